// `npm start`: a local master and one enrolled agent on loopback, from a fresh clone.
//   1. .dev.vars with a random bootstrap token and signing seed (once)
//   2. D1 migrations on the local database, then `wrangler dev --local --port 8787`
//   3. a starter policy if none is published, an enrolled agent in .state/agent (re-used later)
//   4. the agent's proxy on 127.0.0.1:3128
// Ctrl-C stops both children by process group. Needs no network beyond loopback.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const bin = (name) => path.join(root, "node_modules", ".bin", name);
const MASTER_PORT = 8787;
const PROXY = { host: "127.0.0.1", port: 3128 };
const MASTER_URL = `http://127.0.0.1:${MASTER_PORT}`;
const STATE_DIR = path.join(root, ".state", "agent");
const env = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_HIDE_BANNER: "true",
};

const STARTER_POLICY = {
  access: { clients: ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"] },
  rules: [
    {
      id: "example-block",
      name: "Example: block a site (enable to try it)",
      action: "block",
      enabled: false,
      match: { domains: ["example.org"] },
      message: "example.org is blocked by the Fleetgate starter policy.",
    },
  ],
  defaultAction: "allow",
};

const children = [];
let stopping = false;

function log(message) {
  process.stdout.write(`[start] ${message}\n`);
}

function fail(message) {
  process.stderr.write(`[start] ${message}\n`);
  stopAll(1);
}

function stopAll(code) {
  if (stopping) return;
  stopping = true;
  // Agent first, master last: the agent's shutdown still reports to (and uploads logs to) the master.
  const order = [...children].reverse();
  const next = () => {
    const child = order.shift();
    if (!child) return process.exit(code);
    if (child.exitCode !== null || child.signalCode !== null) return next();
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, 15_000);
    child.once("exit", () => {
      clearTimeout(timer);
      next();
    });
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      clearTimeout(timer);
      next();
    }
  };
  next();
}

process.on("SIGINT", () => stopAll(0));
process.on("SIGTERM", () => stopAll(0));

function ensureDevVars() {
  const file = path.join(root, ".dev.vars");
  if (!existsSync(file)) {
    const token = `fgb_${randomBytes(24).toString("base64url")}`;
    const seed = randomBytes(32).toString("base64url");
    writeFileSync(
      file,
      `# Local secrets for wrangler dev (made by npm start; not committed)\nFLEETGATE_BOOTSTRAP_TOKEN=${token}\nFLEETGATE_SIGNING_KEY=${seed}\n`,
      { mode: 0o600 },
    );
    log("created .dev.vars with a new bootstrap token and signing key");
  }
  const vars = Object.fromEntries(
    readFileSync(file, "utf8")
      .split("\n")
      .map((line) => /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*"?([^"\n]*)"?\s*$/.exec(line))
      .filter(Boolean)
      .map((m) => [m[1], m[2]]),
  );
  if (!vars.FLEETGATE_BOOTSTRAP_TOKEN || !vars.FLEETGATE_SIGNING_KEY) {
    fail(
      ".dev.vars lacks FLEETGATE_BOOTSTRAP_TOKEN or FLEETGATE_SIGNING_KEY: delete it to have a new one made",
    );
  }
  return vars;
}

function portFree({ host, port }) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function accepts({ host, port }) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

function startChild(name, command, args) {
  const child = spawn(command, args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  children.push(child);
  const prefix = (stream, out) => {
    let rest = "";
    stream.on("data", (data) => {
      const lines = (rest + data).split("\n");
      rest = lines.pop();
      for (const line of lines) out.write(`[${name}] ${line}\n`);
    });
  };
  prefix(child.stdout, process.stdout);
  prefix(child.stderr, process.stderr);
  child.on("exit", (code, signal) => {
    if (!stopping) fail(`${name} exited unexpectedly (${signal ?? `code ${code}`}); stopping`);
  });
  return child;
}

async function waitForHealth(timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !stopping) {
    try {
      if ((await fetch(`${MASTER_URL}/healthz`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 300));
  }
  fail(`the master did not answer ${MASTER_URL}/healthz within ${timeoutMs / 1000} s`);
}

async function admin(token, method, route, body) {
  const response = await fetch(`${MASTER_URL}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${route} answered ${response.status}: ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : {};
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}

async function ensureEnrolled(token) {
  const config = readJson(path.join(STATE_DIR, "config.json"));
  const enrolled = config?.nodeId && existsSync(path.join(STATE_DIR, "credentials.json"));
  if (enrolled) {
    // The local database may have been reset since: only re-use a node the master still knows.
    const { nodes } = await admin(token, "GET", "/api/v1/nodes");
    const node = nodes.find((n) => n.id === config.nodeId);
    if (node && node.status !== "revoked" && config.masterUrl === MASTER_URL) {
      log(`re-using the enrolled agent ${config.nodeId} in .state/agent`);
      return;
    }
  }
  const { key } = await admin(token, "POST", "/api/v1/enrollment-keys", {
    name: "npm start (local agent)",
    maxUses: 1,
  });
  const result = spawnSync(
    bin("bun"),
    [
      "agent/main.ts",
      "enroll",
      "--master",
      MASTER_URL,
      "--key",
      key,
      "--state-dir",
      STATE_DIR,
      "--listen",
      `${PROXY.host}:${PROXY.port}`,
      "--hostname",
      "local-agent",
    ],
    { cwd: root, env, encoding: "utf8" },
  );
  if (result.status !== 0) throw new Error(`agent enroll failed:\n${result.stderr || result.stdout}`);
  log(result.stdout.split("\n")[0]);
}

async function main() {
  for (const name of ["wrangler", "bun"]) {
    if (!existsSync(bin(name))) fail(`node_modules/.bin/${name} is missing: run npm install first`);
  }
  const vars = ensureDevVars();
  if (!(await portFree({ host: "127.0.0.1", port: MASTER_PORT }))) {
    fail(`port ${MASTER_PORT} is in use: stop whatever holds it (another npm start?)`);
  }
  if (!(await portFree(PROXY)))
    fail(`port ${PROXY.port} is in use: stop whatever holds it (another npm start?)`);

  log("applying D1 migrations to the local database");
  const migrate = spawnSync(bin("wrangler"), ["d1", "migrations", "apply", "DB", "--local"], {
    cwd: root,
    env,
    encoding: "utf8",
  });
  if (migrate.status !== 0) fail(`migrations failed:\n${migrate.stdout}\n${migrate.stderr}`);

  log(`starting the master on ${MASTER_URL}`);
  startChild("master", bin("wrangler"), [
    "dev",
    "--local",
    "--ip",
    "127.0.0.1",
    "--port",
    String(MASTER_PORT),
    "--show-interactive-dev-session=false",
  ]);
  await waitForHealth(90_000);

  const token = vars.FLEETGATE_BOOTSTRAP_TOKEN;
  const { versions } = await admin(token, "GET", "/api/v1/policy/versions");
  if (versions.length === 0) {
    const published = await admin(token, "POST", "/api/v1/policy/versions", {
      policy: STARTER_POLICY,
      message: "Starter policy: allow all (with an example block rule, disabled)",
    });
    log(`published the starter policy as v${published.version}`);
  }
  await ensureEnrolled(token);

  startChild("agent", bin("bun"), ["agent/main.ts", "run", "--state-dir", STATE_DIR]);
  // Probe by connecting, not by binding: a test bind could steal the port from the starting agent.
  const deadline = Date.now() + 20_000;
  while (!(await accepts(PROXY)) && !stopping) {
    if (Date.now() > deadline) return fail(`the agent's proxy did not open ${PROXY.host}:${PROXY.port}`);
    await new Promise((r) => setTimeout(r, 200));
  }

  process.stdout.write(
    [
      "",
      "Fleetgate is running.",
      `  master      ${MASTER_URL}`,
      `  dashboard   ${MASTER_URL}/`,
      `  login       first visit opens /setup: paste the bootstrap token ${token}`,
      "              (from .dev.vars) and choose the first admin's name and password",
      `  proxy       http://${PROXY.host}:${PROXY.port}  (agent state in .state/agent)`,
      "  try         curl -x http://127.0.0.1:3128 http://example.com/",
      "  agent       bun agent/main.ts status --state-dir .state/agent",
      "Press Ctrl-C to stop both.",
      "",
    ].join("\n"),
  );
}

main().catch((error) => fail(error.stack ?? String(error)));
