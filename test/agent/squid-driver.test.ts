// The Squid driver's lifecycle against Debian's real Squid: a candidate include Squid rejects is
// refused with Squid's words and the old one stays; the helpers fail closed while the agent is
// away and recover when it returns; the access log survives `squid -k rotate` and an agent
// restart across a rotation with every request counted exactly once.

import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CheckResult } from "../../agent/doctor/checks";
import { addSquidChecks } from "../../agent/doctor/squid";
import { runSquid } from "../../agent/proxy/squid/squid-ctl";
import type { NodeConfig } from "../../agent/state/schemas";
import { makePolicy, type Origin, startOrigin } from "./proxy-helpers";
import { AGENT_MAIN, BUN, rawRequest, SQUID, type SquidNode, startSquidNode } from "./squid-helpers";

let origin: Origin;
let node: SquidNode;
let version = 1;

beforeAll(async () => {
  origin = await startOrigin((_req, res) => res.end("origin"));
  node = await startSquidNode();
  await node.apply(
    makePolicy({ rules: [{ id: "no-probe", action: "block", match: { domains: ["probe.test"] } }] }),
    1,
  );
}, 60_000);

afterAll(async () => {
  await node?.close();
  await origin?.close();
});

const get = (url: string) =>
  rawRequest(node.port, `GET ${url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);

describe("include changes", () => {
  it("a candidate Squid rejects is refused with Squid's message; the old include and policy stay", async () => {
    const before = readFileSync(node.settings.includePath, "utf8");
    const conf = readFileSync(node.settings.confPath, "utf8");
    // An admin's line that clashes with the include: Squid's parse refuses the combination.
    writeFileSync(node.settings.confPath, `acl fleetgate_refused dstdomain .clash.test\n${conf}`);
    try {
      const realmChange = makePolicy({ auth: { required: false, realm: "Another realm", users: [] } });
      await expect(node.apply(realmChange, ++version)).rejects.toThrow(
        /squid -k parse rejected the include: .*fleetgate_refused/,
      );
      expect(readFileSync(node.settings.includePath, "utf8")).toBe(before);
      expect(node.driver.reconfigures()).toBe(0);
      // Still enforcing the old version.
      expect((await get("http://probe.test/")).body).toContain("no-probe");
    } finally {
      writeFileSync(node.settings.confPath, conf);
    }
  });
});

describe("helper", () => {
  it("fails closed (503) while the agent is down and recovers when it is back", async () => {
    await node.driver.stop(0);
    const down = await get(`http://127.0.0.1:${origin.port}/`);
    expect(down.status).toBe(503);
    expect(down.body).toContain("Fleetgate agent unreachable");
    await node.driver.start();
    const until = Date.now() + 15_000;
    let status = 0;
    while (Date.now() < until) {
      status = (await get(`http://127.0.0.1:${origin.port}/`)).status;
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
  });
});

describe("access log", () => {
  it("counts every request once across squid -k rotate and an agent restart over a rotation", async () => {
    const rotate = async () => {
      const run = await runSquid(SQUID, ["-k", "rotate", "-f", node.settings.confPath]);
      expect(run.code, run.output).toBe(0);
    };
    const burst = async (tag: string, n: number) => {
      for (let i = 0; i < n; i++)
        expect((await get(`http://127.0.0.1:${origin.port}/${tag}/${i}`)).status).toBe(200);
    };
    await node.waitForRecords(node.records.length);
    const start = node.records.length;
    await burst("a", 15);
    await rotate();
    await burst("b", 15);
    await node.waitForRecords(start + 30);
    // Agent down: Squid logs on, then rotates, before the agent reads again.
    const before = node.records.length;
    await node.driver.stop(0);
    await node.driver.start();
    await new Promise((r) => setTimeout(r, 300));
    await node.driver.stop(0);
    await node.driver.start();
    await burst("c", 10);
    await node.driver.stop(0);
    // While it is down, requests are refused by the helper but still logged by Squid.
    for (let i = 0; i < 5; i++)
      expect((await get(`http://127.0.0.1:${origin.port}/d/${i}`)).status).toBe(503);
    await rotate();
    await new Promise((r) => setTimeout(r, 500));
    await node.driver.start();
    await burst("e", 10);
    await node.waitForRecords(before + 25);
    await new Promise((r) => setTimeout(r, 500));
    const mine = node.records.slice(start).filter((r) => /^\/[a-e]\//.test(r.path ?? ""));
    const byTag = (tag: string) => mine.filter((r) => r.path!.startsWith(`/${tag}/`)).length;
    expect({ a: byTag("a"), b: byTag("b"), c: byTag("c"), d: byTag("d"), e: byTag("e") }).toEqual({
      a: 15,
      b: 15,
      c: 10,
      d: 5,
      e: 10,
    });
    expect(new Set(mine.map((r) => r.path)).size).toBe(55);
    expect(node.events.some((e) => e.type === "squid.log_resume_rotated")).toBe(true);
  });
});

describe("metrics", () => {
  it("a Squid node exports request counts by action from the log the agent reads; no connection gauges", async () => {
    await node.waitForRecords(node.records.length);
    const count = (action: string) => node.records.filter((r) => r.action === action).length;
    const seen = node.records.length;
    const before = { allow: count("allow"), block: count("block") };
    for (let i = 0; i < 3; i++)
      expect((await get(`http://127.0.0.1:${origin.port}/m/${i}`)).status).toBe(200);
    expect((await get("http://probe.test/")).status).toBe(403);
    await node.waitForRecords(seen + 4);
    const families = new Map(parsePrometheusTextFormat(node.metrics.render()).map((f) => [f.name, f]));
    const requests = (action: string) =>
      Number(
        families.get("fleetgate_proxy_requests_total")?.metrics.find((m) => m.labels?.action === action)
          ?.value,
      );
    // Every record the driver read went through the counting sink, so the two always agree.
    expect(requests("allow")).toBe(count("allow"));
    expect(requests("block")).toBe(count("block"));
    expect(requests("allow") - before.allow).toBeGreaterThanOrEqual(3);
    expect(requests("block") - before.block).toBeGreaterThanOrEqual(1);
    expect(families.get("fleetgate_proxy_active_connections")?.metrics ?? []).toEqual([]);
  });
});

describe("doctor", () => {
  const config = (): NodeConfig => ({
    masterUrl: "http://127.0.0.1:1",
    listen: `127.0.0.1:${node.port}`,
    driver: "squid",
    hostname: "t",
    instanceId: "instance-1",
    nodeId: "node_1",
    pollWaitSeconds: 25,
    enrolledAt: null,
    squid: {
      confPath: node.settings.confPath,
      includePath: node.settings.includePath,
      accessLogPath: node.settings.accessLogPath,
      socketPath: node.settings.socketPath,
      helperCommand: [BUN, AGENT_MAIN, "squid-helper"],
    },
  });
  const run = async () => {
    const results: CheckResult[] = [{ name: "proxy port x", status: "fail", detail: "in use" }];
    await addSquidChecks(results, config(), path.join(node.dir, "state"));
    return Object.fromEntries(results.map((r) => [r.name, `${r.status}: ${r.detail}`]));
  };

  it("checks binary, include, parse, helper, log; names a stopped agent", async () => {
    const ok = await run();
    expect(ok).toMatchObject({
      [`squid port 127.0.0.1:${node.port}`]: expect.stringMatching(/^ok/),
      "squid binary": expect.stringMatching(/^ok: Squid 5\.\d+ at \/usr\/sbin\/squid/),
      "squid include": expect.stringMatching(/^ok: .*included from/),
      "squid -k parse": expect.stringMatching(/^ok/),
      "squid helper answers": expect.stringMatching(/^ok: answered through .*: OK/),
      "squid access log": expect.stringMatching(/^ok: .*readable/),
    });
    expect(Object.keys(ok)).not.toContain("proxy port x");
    await node.driver.stop(0);
    try {
      const down = await run();
      expect(down["squid helper answers"]).toMatch(/^fail: the helper cannot reach the agent/);
    } finally {
      await node.driver.start();
    }
  });
});
