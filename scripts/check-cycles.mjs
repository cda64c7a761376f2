#!/usr/bin/env node
// Lists import cycles among worker/, agent/ and protocol/ (type-only imports and `import("…")`
// types included: a type cycle still ties the files into one unit for the reader and for tsc)
// and exits 1 when there is any. `npm run check` and `npm test` run it.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";

const root = path.resolve(import.meta.dirname, "..");
const DIRS = ["worker", "protocol", "agent"];
const EXTS = [".ts", ".tsx", ".mts"];

function sourceFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(full));
    // .d.ts files count too: a global declaration that imports the entry is a node like any other.
    else if (EXTS.some((e) => entry.name.endsWith(e))) out.push(full);
  }
  return out;
}

const files = DIRS.flatMap((d) => sourceFiles(path.join(root, d)));
const known = new Set(files);

/** Resolves a relative specifier the way the Bundler resolution does for our own files. */
function resolve(from, spec) {
  if (!spec.startsWith(".")) return null;
  const base = path.resolve(path.dirname(from), spec);
  const candidates = [base, ...EXTS.map((e) => base + e), ...EXTS.map((e) => path.join(base, `index${e}`))];
  // `import "./x.js"` written for a .ts file.
  if (/\.(m?js)$/.test(base)) candidates.push(...EXTS.map((e) => base.replace(/\.m?js$/, e)));
  return candidates.find((c) => known.has(c)) ?? null;
}

/** Every file → the files it imports (runtime, `import type`, re-exports and `typeof import()`). */
export function importGraph() {
  const graph = new Map();
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    const info = ts.preProcessFile(text, true, true);
    const specs = info.importedFiles.map((f) => f.fileName);
    // preProcessFile skips `import("…")` inside type positions; a regex finds those.
    for (const m of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) specs.push(m[1]);
    const deps = new Set();
    for (const spec of specs) {
      const target = resolve(file, spec);
      if (target && target !== file) deps.add(target);
    }
    graph.set(file, deps);
  }
  return graph;
}

/** Strongly connected components with more than one file (Tarjan), each as a sorted list. */
export function findCycles(graph) {
  let index = 0;
  const stack = [];
  const onStack = new Set();
  const idx = new Map();
  const low = new Map();
  const cycles = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) cycles.push(scc.map((f) => path.relative(root, f)).sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return cycles.sort((a, b) => b.length - a.length);
}

/** One shortest loop through the component's first file, to show how it closes. */
function loopOf(graph, scc) {
  const inScc = new Set(scc.map((f) => path.join(root, f)));
  const start = path.join(root, scc[0]);
  const prev = new Map([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const v = queue.shift();
    for (const w of graph.get(v) ?? []) {
      if (!inScc.has(w)) continue;
      if (w === start) {
        const loop = [start];
        for (let at = v; at !== null && at !== start; at = prev.get(at)) loop.splice(1, 0, at);
        return [...loop, start].map((f) => path.relative(root, f)).join(" → ");
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return scc.join(" → ");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const graph = importGraph();
  const cycles = findCycles(graph);
  if (cycles.length === 0) {
    console.log(`no import cycles in ${DIRS.join(", ")} (${files.length} files)`);
    process.exit(0);
  }
  console.error(`${cycles.length} import cycle(s) in ${DIRS.join(", ")}:`);
  for (const scc of cycles) {
    console.error(`- ${scc.length} files, e.g. ${loopOf(graph, scc)}`);
    if (process.argv.includes("--verbose")) for (const f of scc) console.error(`    ${f}`);
  }
  process.exit(1);
}
