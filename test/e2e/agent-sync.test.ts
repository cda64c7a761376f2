// The node's whole life against the real master and the compiled agent: enroll, enforce a
// published block within seconds, survive a master outage and its own restart on the cached
// policy, and refuse bundles tampered on disk or on the wire.
import { readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollArgs } from "../helpers/enroll-args.mjs";
import {
  adminClient,
  agentCli,
  cleanup,
  freePort,
  type Master,
  proxyGet,
  type RunningAgent,
  requireAgentBinary,
  startAgent,
  startMaster,
  startOrigin,
  startTamperRelay,
  tempDir,
  waitFor,
} from "./harness";

let master: Master;
let admin: ReturnType<typeof adminClient>;
let relay: Awaited<ReturnType<typeof startTamperRelay>>;
let origin: Awaited<ReturnType<typeof startOrigin>>;
let stateDir: string;
let proxyPort: number;
let agent: RunningAgent | null = null;
let nodeId: string;

// The test origin is on loopback, which the destination guard refuses unless the policy allows it.
const destinations = { allow: ["127.0.0.0/8", "::1/128"] };
const starter = {
  rules: [{ id: "example-block", action: "block", enabled: false, match: { domains: ["blocked.example"] } }],
  defaultAction: "allow",
  destinations,
};
const blockOrigin = () => ({
  rules: [
    {
      id: "no-origin",
      action: "block",
      match: { ports: [origin.port] },
      message: "The test origin is blocked.",
    },
    ...starter.rules,
  ],
  defaultAction: "allow",
  destinations,
});

const statusJson = async () => {
  const result = await agentCli(["status", "--state-dir", stateDir, "--json"]);
  return { ...result, view: JSON.parse(result.stdout) as Record<string, unknown> };
};
const eventsLog = async () =>
  (await readFile(path.join(stateDir, "events.log"), "utf8"))
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
const through = () => proxyGet(proxyPort, origin.url);

beforeAll(async () => {
  requireAgentBinary();
  master = await startMaster();
  admin = adminClient(master.url);
  relay = await startTamperRelay(() => master.url);
  origin = await startOrigin();
  stateDir = tempDir("agent");
  proxyPort = await freePort();
  await admin.publish(starter, "starter policy");
});

afterAll(async () => {
  await agent?.stop();
  await cleanup();
});

describe("agent against the real master", () => {
  it("enrolls with an enrollment key and keeps the token private", async () => {
    const key = await admin.createEnrollmentKey("e2e");
    const result = await agentCli(
      enrollArgs({
        master: relay.url,
        key,
        stateDir,
        listen: `127.0.0.1:${proxyPort}`,
        hostname: "e2e-node",
      }),
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Enrolled node node_\S+ \(e2e-node\)/);
    const config = JSON.parse(await readFile(path.join(stateDir, "config.json"), "utf8"));
    nodeId = config.nodeId;
    expect(config).toMatchObject({
      masterUrl: relay.url,
      listen: `127.0.0.1:${proxyPort}`,
      driver: "builtin",
    });
    expect((await stat(path.join(stateDir, "credentials.json"))).mode & 0o777).toBe(0o600);

    const again = await agentCli(["enroll", "--master", relay.url, "--key", key, "--state-dir", stateDir]);
    expect(again.code).toBe(0);
    expect(JSON.parse(await readFile(path.join(stateDir, "config.json"), "utf8")).nodeId).toBe(nodeId);
  });

  it("serves traffic under the starter policy, then blocks within 5 s of a publish", async () => {
    agent = startAgent(stateDir);
    await waitFor("the proxy to allow the origin", async () => (await through()).status === 200, 20_000);

    const published = await admin.publish(blockOrigin(), "block the test origin");
    const started = Date.now();
    const blocked = await waitFor(
      "the proxy to block the origin",
      async () => {
        const answer = await through();
        return answer.status === 403 ? answer : null;
      },
      15_000,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(blocked.body).toContain("The test origin is blocked.");

    await waitFor("the master to see the ACK", async () => {
      const node = (await admin.nodes()).find((n) => n.id === nodeId);
      return node?.appliedVersion === published.version && node.status === "online";
    });
  });

  it("answers status --json and doctor sensibly while running", async () => {
    const { code, view } = await statusJson();
    expect(code).toBe(0);
    expect(view).toMatchObject({
      enrolled: true,
      nodeId,
      masterUrl: relay.url,
      running: true,
      enforcing: "policy",
      listen: `127.0.0.1:${proxyPort}`,
      cachedPolicy: { verifies: true },
      master: { state: "ok" },
      lastError: null,
      lastRefusal: null,
    });
    expect((view.policy as { version: number }).version).toBeGreaterThanOrEqual(2);

    const doctor = await agentCli(["doctor", "--state-dir", stateDir]);
    expect(doctor.stdout).toMatch(/✓ master host 127\.0\.0\.1 resolves/);
    expect(doctor.stdout).toMatch(/✓ TCP connect/);
    expect(doctor.stdout).toMatch(/✓ node token accepted by master/);
    expect(doctor.stdout).toMatch(/✓ clock skew vs master/);
    expect(doctor.stdout).toMatch(/✓ proxy port .* held by this agent/);
    expect(doctor.stdout).toMatch(/✓ state dir .* writable/);
    expect(doctor.stdout).toMatch(/✓ cached policy present and verifying/);
    expect(doctor.code).toBe(0);
  });

  it("NACKs a bundle altered on the wire, keeps blocking, and the master shows the error", async () => {
    relay.tamper = true;
    await admin.publish(
      {
        ...blockOrigin(),
        rules: [
          ...blockOrigin().rules,
          { id: "extra", action: "block", match: { domains: ["extra.example"] } },
        ],
      },
      "will be tampered",
    );
    const node = await waitFor(
      "the NACK to reach the master",
      async () => (await admin.nodes()).find((n) => n.id === nodeId && n.lastError),
      15_000,
    );
    expect(relay.tampered).toBeGreaterThan(0);
    expect(node.lastError).toMatch(/policy does not match its hash/);
    expect((await through()).status).toBe(403);
    const { view } = await statusJson();
    expect(view).toMatchObject({ enforcing: "policy", cachedPolicy: { verifies: true } });
    expect(view.lastRefusal).toMatch(/refused: policy does not match its hash/);
    const events = await admin.events(nodeId);
    expect(JSON.stringify(events)).toMatch(/policy\.rejected/);
    expect((await eventsLog()).some((e) => e.event === "policy.rejected" && e.source === "master")).toBe(
      true,
    );
    relay.tamper = false;
  });

  it("keeps blocking from the cached policy with the master down, across an agent restart", async () => {
    await master.stop();
    expect(await agent!.stop()).toBe(0);
    agent = startAgent(stateDir);
    await waitFor("the restarted proxy to block", async () => (await through()).status === 403, 20_000);
    const { view } = await statusJson();
    expect(view).toMatchObject({ running: true, enforcing: "policy" });
    const log = await eventsLog();
    expect(log.some((e) => e.event === "policy.applied" && e.source === "cache")).toBe(true);
    expect(log.some((e) => e.event === "shutdown")).toBe(true);
    await waitFor("the agent to notice the master is gone", async () =>
      (await eventsLog()).some((e) => e.event === "sync.failed"),
    );
    const doctor = await agentCli(["doctor", "--state-dir", stateDir]);
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(/✗ node token accepted by master/);
  });

  it("refuses a cached bundle tampered on disk: fails closed, then reports it once the master is back", async () => {
    expect(await agent!.stop()).toBe(0);
    const file = path.join(stateDir, "policy", "last-good.json");
    const bundle = JSON.parse(await readFile(file, "utf8"));
    bundle.policy.rules = bundle.policy.rules.filter((rule: { id: string }) => rule.id !== "no-origin");
    await writeFile(file, JSON.stringify(bundle));

    agent = startAgent(stateDir);
    await waitFor("the proxy to fail closed", async () => (await through()).status === 503, 20_000);
    const { view } = await statusJson();
    expect(view).toMatchObject({
      running: true,
      enforcing: "fail-closed",
      cachedPolicy: { verifies: false },
    });
    expect(view.lastRefusal).toMatch(/cached policy refused: .*policy does not match its hash/);
    const refusal = (await eventsLog()).find((e) => e.event === "policy.rejected" && e.source === "cache");
    expect(refusal?.error).toMatch(/does not match its hash/);

    master = await startMaster({ persistDir: master.persistDir, port: master.port });
    admin = adminClient(master.url);
    await waitFor(
      "the fresh policy to be enforced",
      async () => (await through()).status === 403,
      60_000,
      250,
    );
    await waitFor(
      "the master to record the refused cache",
      async () => JSON.stringify(await admin.events(nodeId)).includes("cached policy refused"),
      15_000,
    );
  });

  it("stops gracefully on SIGTERM with exit 0", async () => {
    expect(await agent!.stop()).toBe(0);
    agent = null;
    const { view } = await statusJson();
    expect(view.running).toBe(false);
  });
});

describe("agent CLI", () => {
  it("answers --help on every command with exit 0", async () => {
    for (const command of ["enroll", "run", "status", "doctor", "version"]) {
      const result = await agentCli([command, "--help"]);
      expect(result.code, command).toBe(0);
      expect(result.stdout, command).toMatch(new RegExp(`Usage: fleetgate-agent ${command}`));
    }
    const top = await agentCli(["--help"]);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/Commands:/);
  });

  it("exits 2 on usage errors and 1 on failures", async () => {
    expect((await agentCli([])).code).toBe(2);
    expect((await agentCli(["frobnicate"])).code).toBe(2);
    expect((await agentCli(["status", "--bogus"])).code).toBe(2);
    expect((await agentCli(["enroll", "--key", "k"])).code).toBe(2);
    expect((await agentCli(["enroll", "--master", "http://x", "--key", "k", "--listen", "nope"])).code).toBe(
      2,
    );
    const empty = tempDir("empty");
    expect((await agentCli(["status", "--state-dir", empty])).code).toBe(1);
    expect((await agentCli(["run"], { FLEETGATE_STATE_DIR: empty })).code).toBe(1);
    const unreachable = await agentCli([
      "enroll",
      "--master",
      `http://127.0.0.1:${await freePort()}`,
      "--key",
      "k",
      "--state-dir",
      empty,
    ]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/enroll failed/);
  });

  it("prints the version embedded at build time", async () => {
    const pkg = JSON.parse(await readFile(path.join(import.meta.dirname, "../../package.json"), "utf8"));
    const result = await agentCli(["version"]);
    expect(result).toMatchObject({ code: 0, stdout: `fleetgate-agent ${pkg.version}\n` });
  });
});
