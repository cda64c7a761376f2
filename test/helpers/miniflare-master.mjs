// The master on Miniflare's own API, without wrangler dev's proxy worker in front: one workerd
// serving the user worker directly. Run by startMaster({ runtime: "miniflare" }) as its own
// process group, so benchmarks measure and stop it like the wrangler one.
// Usage: node miniflare-master.mjs <bundleDir> <persistDir> <port> <bindingsJson>
// The bundle is wrangler's own build (`wrangler deploy --dry-run --outdir`), and the bindings,
// Durable Objects (SQLite-backed) and D1/R2 ids come from wrangler.toml through wrangler's
// unstable_getMiniflareWorkerOptions, so both stacks read the same database files.
import { readdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

// The Miniflare wrangler itself runs (its own dependency), not whichever one is hoisted.
const fromWrangler = createRequire(createRequire(import.meta.url).resolve("wrangler"));
const { Log, LogLevel, Miniflare } = await import(fromWrangler.resolve("miniflare"));

const root = path.resolve(import.meta.dirname, "../..");
const [bundleDir, persistDir, port, bindingsJson] = process.argv.slice(2);
const { workerOptions } = unstable_getMiniflareWorkerOptions(path.join(root, "wrangler.toml"));
// The build writes the entry as index.js and every `Text` rule import beside it.
const modules = readdirSync(bundleDir)
  .filter((f) => f === "index.js" || (!f.endsWith(".map") && f !== "README.md"))
  .sort((a, b) => (a === "index.js" ? -1 : b === "index.js" ? 1 : a.localeCompare(b)))
  .map((f) => ({ type: f === "index.js" ? "ESModule" : "Text", path: path.join(bundleDir, f) }));

const mf = new Miniflare({
  host: "127.0.0.1",
  port: Number(port),
  defaultPersistRoot: path.join(persistDir, "v3"),
  log: new Log(LogLevel.WARN),
  // Never ask Cloudflare for a request.cf object: loopback only.
  cf: {},
  // FLEET_INSPECT_PORT: the V8 inspector of the worker (the fleet bench's --profile takes a CPU
  // profile through it).
  ...(process.env.FLEET_INSPECT_PORT ? { inspectorPort: Number(process.env.FLEET_INSPECT_PORT) } : {}),
  workers: [
    {
      ...workerOptions,
      modulesRules: undefined,
      name: "fleetgate",
      modules,
      modulesRoot: bundleDir,
      bindings: { ...workerOptions.bindings, ...JSON.parse(bindingsJson) },
    },
  ],
});
const url = await mf.ready;
console.log(`ready ${url}`);
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  mf.dispose().finally(() => process.exit(0));
};
for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, stop);
// A parent that died without stopping us (SIGKILL, SIGPIPE from a closed pipe) must not leave a
// master running: once we are re-parented, we stop too.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) stop();
}, 1000).unref();
