// scripts/check-cycles.mjs (run by `npm test` and `npm run check`): it must see type-only imports
// and `typeof import()` types, find a cycle when there is one, and find none in the tree.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { findCycles, importGraph } from "../../scripts/check-cycles.mjs";

const root = path.resolve(import.meta.dirname, "../..");
const at = (f: string) => path.join(root, f);

describe("the import-cycle check", () => {
  it("finds a cycle, and only the files on it", () => {
    const graph = new Map([
      [at("worker/a.ts"), new Set([at("worker/b.ts")])],
      [at("worker/b.ts"), new Set([at("worker/c.ts")])],
      [at("worker/c.ts"), new Set([at("worker/a.ts")])],
      [at("worker/d.ts"), new Set([at("worker/a.ts")])],
    ]);
    expect(findCycles(graph)).toEqual([["worker/a.ts", "worker/b.ts", "worker/c.ts"]]);
  });

  it("reads `import type` and `typeof import()` edges", () => {
    const graph = importGraph();
    expect(graph.get(at("worker/env-vars.d.ts"))).toContain(at("worker/index.ts"));
    // `import type { AuthedNode } from "../env"` only.
    expect(graph.get(at("worker/services/node-auth.ts"))).toContain(at("worker/env.ts"));
  });

  it("finds no cycle in worker/, protocol/ and agent/", () => {
    expect(findCycles(importGraph())).toEqual([]);
  });
});
