// The one way tests, benchmarks and the browser suite start the real master: `wrangler dev
// --local` on a loopback port with its own persisted D1 (migrations applied) and test secrets.
// `runtime: "miniflare"` runs the same build on Miniflare's API instead (miniflare-master.mjs):
// no wrangler proxy worker in front of the user worker; same wrangler.toml, same database files.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "../..");
const wrangler = path.join(root, "node_modules/.bin/wrangler");
const env = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_HIDE_BANNER: "true",
};

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function exited(child, timeoutMs) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
      resolve();
    }, timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Options: `vars` override wrangler.toml [vars] (e.g. { ENROLL_RATE_LIMIT: "1000" });
 * `persistDir` and `port` of a stopped master bring the same master back (the caller then owns
 * the directory; otherwise a temp dir is made and removed on stop); `testScheduled` lets
 * `GET /__scheduled` run the cron trigger (housekeeping, compaction) (wrangler runtime only);
 * `runtime`: "wrangler" (default, as `npm start`) or "miniflare" (benchmarks: no proxy worker).
 * Returns { url, port, persistDir, child, log(), stop() } — stop() ends the process group.
 */
export async function startMaster({
  bootstrapToken,
  signingSeed,
  vars = {},
  persistDir,
  port,
  readyTimeoutMs = 90_000,
  testScheduled = false,
  runtime = "wrangler",
}) {
  const ownsDir = !persistDir;
  const persist = persistDir ?? mkdtempSync(path.join(os.tmpdir(), "fleetgate-master-"));
  // Idempotent: a restarted master's database is already migrated and stays as it is.
  const migrate = spawnSync(
    wrangler,
    ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist],
    {
      cwd: root,
      env,
      encoding: "utf8",
      timeout: 120_000,
    },
  );
  if (migrate.status !== 0) throw new Error(`migrations failed:\n${migrate.stdout}\n${migrate.stderr}`);
  const listenPort = port ?? (await freePort());
  const secrets = { FLEETGATE_BOOTSTRAP_TOKEN: bootstrapToken, FLEETGATE_SIGNING_KEY: signingSeed, ...vars };
  let bundleDir = null;
  let child;
  if (runtime === "miniflare") {
    if (testScheduled) throw new Error("testScheduled needs the wrangler runtime");
    bundleDir = mkdtempSync(path.join(os.tmpdir(), "fleetgate-bundle-"));
    // wrangler's own build (same rules and defines as `wrangler dev`), without starting it.
    const build = spawnSync(wrangler, ["deploy", "--dry-run", "--outdir", bundleDir], {
      cwd: root,
      env,
      encoding: "utf8",
      timeout: 120_000,
    });
    if (build.status !== 0) {
      rmSync(bundleDir, { recursive: true, force: true });
      if (ownsDir) rmSync(persist, { recursive: true, force: true });
      throw new Error(`build failed:\n${build.stdout}\n${build.stderr}`);
    }
    child = spawn(
      process.execPath,
      [
        path.join(import.meta.dirname, "miniflare-master.mjs"),
        bundleDir,
        persist,
        String(listenPort),
        JSON.stringify(secrets),
      ],
      { cwd: root, env, stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
  } else {
    child = spawn(
      wrangler,
      [
        "dev",
        "--local",
        "--ip",
        "127.0.0.1",
        "--port",
        String(listenPort),
        "--inspector-port",
        String(await freePort()),
        "--persist-to",
        persist,
        "--show-interactive-dev-session=false",
        ...(testScheduled ? ["--test-scheduled"] : []),
        ...Object.entries(secrets).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
      ],
      { cwd: root, env, stdio: ["ignore", "pipe", "pipe"], detached: true },
    );
  }
  let log = "";
  child.stdout.on("data", (d) => {
    log += d;
  });
  child.stderr.on("data", (d) => {
    log += d;
  });
  const url = `http://127.0.0.1:${listenPort}`;
  const stop = async () => {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
    await exited(child, 10_000);
    if (ownsDir) rmSync(persist, { recursive: true, force: true });
    if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {}
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`master did not start:\n${log.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, port: listenPort, persistDir: persist, child, log: () => log, stop };
}
