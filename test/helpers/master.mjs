// Starts the real master under `wrangler dev --local` on a free loopback port with its own
// persisted D1 (migrations applied) and fixed test secrets. Used by the benchmarks.
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

/** `vars` override wrangler.toml [vars] for this run (e.g. { ENROLL_RATE_LIMIT: "1000" }). */
export async function startMaster({ bootstrapToken, signingSeed, vars = {} }) {
  const persist = mkdtempSync(path.join(os.tmpdir(), "fleetgate-master-"));
  const migrate = spawnSync(
    wrangler,
    ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist],
    {
      cwd: root,
      env,
      encoding: "utf8",
    },
  );
  if (migrate.status !== 0) throw new Error(`migrations failed: ${migrate.stderr}`);
  const port = await freePort();
  const child = spawn(
    wrangler,
    [
      "dev",
      "--local",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(await freePort()),
      "--persist-to",
      persist,
      "--show-interactive-dev-session=false",
      "--var",
      `FLEETGATE_BOOTSTRAP_TOKEN:${bootstrapToken}`,
      "--var",
      `FLEETGATE_SIGNING_KEY:${signingSeed}`,
      ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
    ],
    { cwd: root, env, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  let log = "";
  child.stdout.on("data", (d) => {
    log += d;
  });
  child.stderr.on("data", (d) => {
    log += d;
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {}
    if (Date.now() > deadline || child.exitCode !== null) {
      stop();
      throw new Error(`master did not start:\n${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  function stop() {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
    rmSync(persist, { recursive: true, force: true });
  }
  return { url, stop, log: () => log };
}
