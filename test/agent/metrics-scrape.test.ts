// The agent's Prometheus endpoint, scraped from a real `run` (Bun, from source) after real requests
// through its built-in proxy, parsed with a real exposition-format parser.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import parsePrometheusTextFormat, { type MetricFamily } from "parse-prometheus-text-format";
import { afterEach, describe, expect, it } from "vitest";
import { cli, enrollAt, freePort } from "./fakes/cli";
import { enrollAnswer, FakeMaster } from "./fakes/master";
import { makeBundle, signingKey } from "./fakes/seeds";
import { makePolicy, proxyRequest, RawClient, startEcho, startOrigin } from "./proxy-helpers";

const ROOT = path.resolve(import.meta.dirname, "../..");
const BUN = path.join(ROOT, "node_modules/.bin/bun");
const MAIN = path.join(ROOT, "agent/main.ts");
// FLEETGATE_AGENT_BIN=dist/fleetgate-agent-linux-x64 runs the same test against the compiled agent.
const AGENT = process.env.FLEETGATE_AGENT_BIN
  ? [path.resolve(ROOT, process.env.FLEETGATE_AGENT_BIN)]
  : [BUN, MAIN];

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function startRun(dir: string, extra: string[]) {
  const child: ChildProcess = spawn(AGENT[0]!, [...AGENT.slice(1), "run", "--state-dir", dir, ...extra], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  });
  const waitFor = async (text: string, timeoutMs = 30_000) => {
    const until = Date.now() + timeoutMs;
    while (!stderr.includes(text)) {
      if (Date.now() > until || child.exitCode !== null) throw new Error(`no ${text} from run:\n${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  return { child, exited, waitFor, stderr: () => stderr };
}

async function scrape(
  port: number,
): Promise<{ families: Map<string, MetricFamily>; text: string; type: string }> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(response.status).toBe(200);
  const text = await response.text();
  const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
  return { families, text, type: response.headers.get("content-type") ?? "" };
}

function value(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const family = families.get(name);
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (!sample) throw new Error(`no sample ${name} ${JSON.stringify(labels)}`);
  return Number(sample.value);
}

async function enrolledNode() {
  const dir = await mkdtemp(path.join(os.tmpdir(), "fg-metrics-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const key = await signingKey();
  const master = new FakeMaster();
  master.enrollReply = enrollAnswer(key.publicKey);
  // enrollAnswer pins kid "kid-<publicKey>"; the bundle is signed under that kid.
  const policy = makePolicy({
    lists: { social: { domains: ["blocked.test"] } },
    rules: [{ id: "no-social", action: "block", match: { domains: ["@social"] } }],
  });
  master.current = await makeBundle({ ...key, kid: `kid-${key.publicKey}` }, 3, policy);
  await master.listen();
  cleanups.push(() => master.close());
  const proxyPort = await enrollAt(master.url, dir);
  return { dir, master, proxyPort };
}

describe("agent metrics", () => {
  it("counts real requests by action, bytes, upstream errors, tunnels, policy and spool, in Prometheus text", async () => {
    const { dir, proxyPort } = await enrolledNode();
    const origin = await startOrigin((_req, res) => res.end("hello metrics"));
    cleanups.push(() => origin.close());
    const echo = await startEcho();
    cleanups.push(() => echo.close());
    const echoPort = echo.port;
    const closedPort = await freePort();

    const metricsPort = await freePort();
    const run = startRun(dir, ["--metrics-listen", `127.0.0.1:${metricsPort}`]);
    await run.waitFor('"metrics.listening"');
    await run.waitFor('"source":"master","version":3');

    const before = await scrape(metricsPort);
    expect(before.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(value(before.families, "fleetgate_proxy_requests_total", { action: "allow" })).toBe(0);
    expect(value(before.families, "fleetgate_policy_version")).toBe(3);

    const send = (target: string) =>
      proxyRequest(proxyPort, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    for (let i = 0; i < 2; i++) {
      const ok = await send(`http://127.0.0.1:${origin.port}/page`);
      expect(ok.status).toBe(200);
      ok.client.close();
    }
    const blocked = await send("http://blocked.test/");
    expect(blocked.status).toBe(403);
    blocked.client.close();
    const refused = await send(`http://127.0.0.1:${closedPort}/`);
    expect(refused.status).toBe(502);
    refused.client.close();
    // A tunnel held open while scraping.
    const tunnel = await RawClient.connect(proxyPort);
    cleanups.push(() => tunnel.close());
    tunnel.send(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\n\r\n`);
    await new Promise((resolve) => setTimeout(resolve, 300));

    // Counting happens as each record is written, after the answer went out: poll briefly.
    let after = await scrape(metricsPort);
    for (
      let i = 0;
      i < 50 && value(after.families, "fleetgate_proxy_requests_total", { action: "error" }) < 1;
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await scrape(metricsPort);
    }
    const f = after.families;
    expect(value(f, "fleetgate_proxy_requests_total", { action: "allow" })).toBe(2);
    expect(value(f, "fleetgate_proxy_requests_total", { action: "block" })).toBe(1);
    expect(value(f, "fleetgate_proxy_requests_total", { action: "error" })).toBe(1);
    expect(value(f, "fleetgate_proxy_upstream_errors_total")).toBe(1);
    expect(value(f, "fleetgate_proxy_sent_bytes_total")).toBeGreaterThanOrEqual(2 * "hello metrics".length);
    expect(value(f, "fleetgate_proxy_active_tunnels")).toBe(1);
    expect(value(f, "fleetgate_proxy_active_connections")).toBeGreaterThanOrEqual(1);
    expect(value(f, "fleetgate_policy_version")).toBe(3);
    const appliedAt = value(f, "fleetgate_policy_last_apply_timestamp_seconds");
    expect(Math.abs(appliedAt - Date.now() / 1000)).toBeLessThan(120);
    expect(value(f, "fleetgate_policy_last_apply_duration_seconds")).toBeGreaterThanOrEqual(0);
    // Four records are in the spool, not yet sealed into a chunk.
    expect(value(f, "fleetgate_spool_pending_records")).toBeGreaterThanOrEqual(4);
    expect(value(f, "fleetgate_spool_oldest_pending_age_seconds")).toBeGreaterThanOrEqual(0);
    expect(value(f, "fleetgate_spool_dropped_records_total")).toBe(0);
    expect(value(f, "fleetgate_sync_failures_total", { kind: "poll" })).toBe(0);
    // Conventions: every family has HELP and TYPE; counters end in _total.
    for (const family of f.values()) {
      expect(after.text).toContain(`# HELP ${family.name} `);
      expect(after.text).toContain(`# TYPE ${family.name} `);
      if (family.type === "COUNTER") expect(family.name).toMatch(/_total$/);
    }
    if (process.env.METRICS_SAMPLE) console.log(after.text);

    const wrongPath = await fetch(`http://127.0.0.1:${metricsPort}/`);
    expect(wrongPath.status).toBe(404);
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
  });

  it("is off by default, and refuses a non-loopback address unless allowed", async () => {
    const { dir } = await enrolledNode();
    const run = startRun(dir, []);
    await run.waitFor('"proxy.listening"');
    expect(run.stderr()).not.toContain("metrics.listening");
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);

    const refused = await cli(["run", "--state-dir", dir, "--metrics-listen", "0.0.0.0:9464"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/cannot start: metrics listen address 0\.0\.0\.0:9464 is not loopback/);
  });
});
