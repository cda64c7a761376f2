// Builds the single-file agent binaries: `npm run build:agent`.
// linux-x64 is built offline from the bun in node_modules; linux-arm64 needs bun's cross-compile
// runtime, which bun downloads on demand — when that is not possible (offline), it is skipped.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const bun = path.join(root, "node_modules", ".bin", "bun");
const { version } = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
const only = process.argv.slice(2); // e.g. `node scripts/build-agent.mjs linux-x64`

const targets = [
  { name: "linux-x64", target: null, required: true },
  { name: "linux-arm64", target: "bun-linux-arm64", required: false },
].filter((t) => only.length === 0 || only.includes(t.name));

if (!existsSync(bun)) {
  console.error(`bun not found at ${bun}: run npm install first`);
  process.exit(1);
}
mkdirSync(path.join(root, "dist"), { recursive: true });

let failed = false;
for (const { name, target, required } of targets) {
  const outfile = path.join("dist", `fleetgate-agent-${name}`);
  const args = [
    "build",
    "--compile",
    "--minify",
    "--sourcemap=none",
    `--define`,
    `FLEETGATE_AGENT_VERSION=${JSON.stringify(version)}`,
    ...(target ? [`--target=${target}`] : []),
    "agent/main.ts",
    // Started as a Worker by agent/sync/bundle-worker.ts: must be an entry point of the binary.
    "agent/sync/bundle-worker-entry.ts",
    "--outfile",
    outfile,
  ];
  const started = Date.now();
  // An optional cross target may try a download; offline that must fail fast, not stall npm test.
  const timeout = required ? 300_000 : 90_000;
  const result = spawnSync(bun, args, { cwd: root, encoding: "utf8", timeout });
  if (result.status === 0 && existsSync(path.join(root, outfile))) {
    const mb = (statSync(path.join(root, outfile)).size / 1024 / 1024).toFixed(0);
    console.log(`built ${outfile} (${version}, ${mb} MB, ${Date.now() - started} ms)`);
    continue;
  }
  const why = (result.stderr || result.stdout || String(result.error ?? ""))
    .trim()
    .split("\n")
    .slice(-3)
    .join(" | ");
  if (required) {
    console.error(`failed to build ${outfile}: ${why}`);
    failed = true;
  } else {
    console.log(`note: skipped ${outfile}: the ${target} runtime is not obtainable here (${why})`);
  }
}
process.exit(failed ? 1 : 0);
