// Sites, a staged rollout and PAC files against the real master and compiled agents: a site rule
// is enforced only on that site's node; a rollout reaches its ring first and the fleet after the
// soak (timings printed); the site's PAC file, evaluated by pac-resolver, drops a stopped node.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { createPacResolver } from "pac-resolver";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { QuickJS } from "quickjs-wasi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollArgs } from "../helpers/enroll-args.mjs";
import {
  agentCli,
  BOOTSTRAP_TOKEN,
  cleanup,
  freePort,
  type Master,
  proxyGet,
  type RunningAgent,
  requireAgentBinary,
  startAgent,
  startMaster,
  startOrigin,
  tempDir,
  waitFor,
} from "./harness";

let master: Master;
let origin: Awaited<ReturnType<typeof startOrigin>>;

interface Node {
  name: string;
  site: string;
  stateDir: string;
  port: number;
  id: string;
  agent: RunningAgent | null;
}
const fleet: Node[] = [];

async function api(method: string, route: string, body?: unknown) {
  const response = await fetch(`${master.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${BOOTSTRAP_TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${route} → ${response.status}: ${text}`);
  return text ? JSON.parse(text) : {};
}

const destinations = { allow: ["127.0.0.0/8", "::1/128"] };
const blockOn = (sites: string[]) => ({
  rules: [
    {
      id: "site-block",
      action: "block",
      match: { ports: [origin.port], sites },
      message: "blocked at this site",
    },
  ],
  defaultAction: "allow",
  destinations,
});

async function nodeViews(): Promise<
  { id: string; appliedVersion: number | null; sync: string; status: string }[]
> {
  return (await api("GET", "/api/v1/nodes")).nodes;
}

async function allApplied(ids: string[], version: number) {
  const views = await nodeViews();
  return ids.every((id) => views.find((v) => v.id === id)?.appliedVersion === version);
}

beforeAll(async () => {
  requireAgentBinary();
  master = await startMaster();
  origin = await startOrigin();
  await api("POST", "/api/v1/sites", { name: "alpha" });
  await api("POST", "/api/v1/sites", {
    name: "beta",
    settings: { bypass: ["10.9.0.0/16"], allowDirect: false },
  });
  for (const [name, site] of [
    ["alpha-1", "alpha"],
    ["beta-1", "beta"],
    ["beta-2", "beta"],
  ] as const) {
    const key = (await api("POST", "/api/v1/enrollment-keys", { name: `${site} key`, site })).key as string;
    const stateDir = tempDir(name);
    const port = await freePort();
    const enrolled = await agentCli(
      enrollArgs({ master: master.url, key, stateDir, listen: `127.0.0.1:${port}`, hostname: name }),
    );
    expect(enrolled.code, enrolled.stderr).toBe(0);
    const id = JSON.parse(await readFile(path.join(stateDir, "config.json"), "utf8")).nodeId as string;
    const asserted = JSON.parse(await readFile(path.join(stateDir, "site.json"), "utf8"));
    expect(asserted).toMatchObject({ nodeId: id, site });
    fleet.push({ name, site, stateDir, port, id, agent: null });
  }
  for (const node of fleet) node.agent = startAgent(node.stateDir);
}, 240_000);

afterAll(async () => {
  for (const node of fleet) await node.agent?.stop();
  await cleanup();
});

const through = (node: Node) => proxyGet(node.port, origin.url);

describe("a fleet with sites", () => {
  it("enforces a site rule only on that site's node", async () => {
    const v1 = await api("POST", "/api/v1/policy/versions", {
      policy: blockOn(["alpha"]),
      message: "alpha only",
    });
    await waitFor(
      "every node to apply v1",
      () =>
        allApplied(
          fleet.map((n) => n.id),
          v1.version,
        ),
      30_000,
      250,
    );
    const [alpha, beta1, beta2] = fleet;
    expect((await through(alpha!)).status).toBe(403);
    expect((await through(beta1!)).status).toBe(200);
    expect((await through(beta2!)).status).toBe(200);
  });

  it("rolls out to a ring first, holds the rest, and promotes after the soak", async () => {
    const [, beta1, beta2] = fleet;
    const ids = fleet.map((n) => n.id);
    const soakSeconds = 3;
    const publishedAt = Date.now();
    const rollout = await api("POST", "/api/v1/rollouts", {
      policy: blockOn(["alpha", "beta"]),
      message: "beta too",
      ring: { nodes: [beta1!.id] },
      soakSeconds,
    });
    await waitFor("the ring to apply", () => allApplied([beta1!.id], rollout.toVersion), 30_000, 100);
    const ringAppliedMs = Date.now() - publishedAt;
    expect((await through(beta1!)).status).toBe(403);
    // The held node keeps its version and says so.
    expect((await through(beta2!)).status).toBe(200);
    expect((await nodeViews()).find((v) => v.id === beta2!.id)?.sync).toBe("held");

    // The gates run on the cron; here the same check is asked for every 250 ms.
    const promoted = await waitFor(
      "the rollout to promote itself",
      async () => {
        const after = (await api("POST", "/api/v1/rollouts/evaluate")).rollout;
        return after?.state === "promoted" ? after : null;
      },
      60_000,
      250,
    );
    const promotedAt = Date.now();
    await waitFor("the whole fleet to apply", () => allApplied(ids, rollout.toVersion), 30_000, 100);
    const fullMs = Date.now() - promotedAt;
    expect((await through(beta2!)).status).toBe(403);
    expect(promoted.reason).toMatch(/gates held/);
    const load = (await readFile("/proc/loadavg", "utf8")).split(" ").slice(0, 3).join(" ");
    console.log(
      `rollout timings: publish → ring applied ${ringAppliedMs} ms; promotion (after ${soakSeconds} s soak) → full fleet applied ${fullMs} ms; publish → promoted ${promotedAt - publishedAt} ms; load ${load}`,
    );
    expect(ringAppliedMs).toBeLessThan(15_000);
    expect(fullMs).toBeLessThan(15_000);
  });

  it("a node moved to another site judges as that site's node, without a restart", async () => {
    const [, , beta2] = fleet;
    const v3 = await api("POST", "/api/v1/policy/versions", {
      policy: blockOn(["alpha"]),
      message: "alpha only again",
    });
    await waitFor(
      "every node to apply v3",
      () =>
        allApplied(
          fleet.map((n) => n.id),
          v3.version,
        ),
      30_000,
      250,
    );
    expect((await through(beta2!)).status).toBe(200);
    await api("PATCH", `/api/v1/nodes/${beta2!.id}`, { site: "alpha" });
    const movedAt = Date.now();
    await waitFor(
      "the moved node to enforce alpha's rule",
      async () => (await through(beta2!)).status === 403,
      30_000,
      250,
    );
    console.log(`site move: enforced ${Date.now() - movedAt} ms after the PATCH`);
    const asserted = JSON.parse(await readFile(path.join(beta2!.stateDir, "site.json"), "utf8"));
    expect(asserted.site).toBe("alpha");
    await api("PATCH", `/api/v1/nodes/${beta2!.id}`, { site: "beta" });
    await waitFor("the node back in beta", async () => (await through(beta2!)).status === 200, 30_000, 250);
  });

  it("publishes the site's healthy nodes as a PAC file and drops a stopped one", async () => {
    const qjs = await QuickJS.create();
    const [, beta1, beta2] = fleet;
    const pac = async () => {
      const res = await fetch(`${master.url}/pac/beta.pac`);
      expect(res.status).toBe(200);
      return createPacResolver(qjs, await res.text());
    };
    const both = `PROXY 127.0.0.1:${beta1!.port}; PROXY 127.0.0.1:${beta2!.port}`;
    await waitFor(
      "both beta nodes in the PAC",
      async () => (await (await pac())("http://www.example.com/")) === both,
      30_000,
      250,
    );
    expect(await (await pac())("http://10.9.1.1/")).toBe("DIRECT");

    await beta1!.agent!.stop();
    beta1!.agent = null;
    const stoppedAt = Date.now();
    await waitFor(
      "the stopped node to leave the PAC",
      async () => (await (await pac())("http://www.example.com/")) === `PROXY 127.0.0.1:${beta2!.port}`,
      60_000,
      500,
    );
    console.log(`PAC: a stopped node left the PAC after ${Date.now() - stoppedAt} ms (POLL_WAIT_SECONDS=5)`);
    expect(Date.now() - stoppedAt).toBeLessThan(60_000);
  });

  it("serves fleet metrics a Prometheus parser reads", async () => {
    const res = await fetch(`${master.url}/api/v1/metrics`, {
      headers: { authorization: `Bearer ${BOOTSTRAP_TOKEN}` },
    });
    expect(res.status).toBe(200);
    const families = parsePrometheusTextFormat(await res.text());
    const names = families.map((f) => f.name);
    expect(names).toEqual(
      expect.arrayContaining([
        "fleetgate_nodes",
        "fleetgate_nodes_by_applied_version",
        "fleetgate_ingest_lag_seconds",
        "fleetgate_spool_pending_chunks",
      ]),
    );
    const samples = families.find((f) => f.name === "fleetgate_nodes")!.metrics;
    const count = (pick: (labels: Record<string, string>) => boolean) =>
      samples.filter((m) => pick(m.labels ?? {})).reduce((sum, m) => sum + Number(m.value), 0);
    expect(count(() => true)).toBe(3);
    expect(count((l) => l.sync === "head")).toBe(3);
    expect(count((l) => l.site === "beta")).toBe(2);
  });
});
