import { describe, expect, it } from "vitest";
import { chunkRows, MAX_BOUND_PARAMETERS } from "../../worker/db/client";
import { call, json } from "./helpers/api";
import { enrollNode } from "./helpers/factories";

type Doc = { paths: Record<string, Record<string, unknown>> };

const JUNK: (string | undefined)[] = [
  undefined,
  "",
  "null",
  "[]",
  '"text"',
  "42",
  "{",
  '{"a":',
  "{}",
  '{"policy":null,"message":123}',
  `{"name":"${"\u0000".repeat(10)}","role":"admin"}`,
  JSON.stringify({ request: { client: "::1", url: "http://[::1]:99999/" } }),
  JSON.stringify({ enrollmentKey: 1, instanceId: [], hostname: {}, agentVersion: null, proxyKind: true }),
];

describe("no 500 for anything a client can send", () => {
  it("answers junk on every documented route with a 2xx/3xx/4xx and the uniform error body", async () => {
    const node = await enrollNode();
    const doc = await json<Doc>(await call("/api/openapi.json", { token: null }), 200);
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of Object.keys(item)) {
        for (const body of JUNK) {
          const concrete = path.replace("{version}", "1").replace("{id}", "node_abc12345");
          const token = path.startsWith("/api/agent/") ? node.nodeToken : undefined;
          const res = await call(concrete.replace("/policy?", "/policy?wait=0&"), {
            method: method.toUpperCase(),
            rawBody: method === "get" ? undefined : body,
            headers: { "Content-Type": "application/json" },
            ...(token ? { token } : {}),
          });
          expect(res.status, `${method} ${path} ${body}`).toBeLessThan(500);
          if (res.status >= 400) {
            const parsed = (await res.json()) as { error: { code: string; requestId: string } };
            expect(parsed.error.code, `${method} ${path}`).toMatch(/^[A-Z_]+$/);
          } else {
            await res.arrayBuffer();
          }
        }
      }
    }
  });
});

describe("D1 bound-parameter guard", () => {
  it("splits multi-row writes so no statement binds more than 100 parameters", () => {
    const rows = Array.from({ length: 1000 }, (_, i) => i);
    const chunks = chunkRows(rows, 7);
    expect(chunks.every((c) => c.length * 7 <= MAX_BOUND_PARAMETERS)).toBe(true);
    expect(chunks.flat()).toEqual(rows);
    expect(() => chunkRows(rows, 101)).toThrow(/100 parameters/);
  });
});
