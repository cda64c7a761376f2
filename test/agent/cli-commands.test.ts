import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseListen } from "../../agent/cli-kit";
import { StateDir } from "../../agent/state/state-dir";
import { cli, fakeMaster } from "./fakes/cli";
import { enrollAnswer } from "./fakes/master";
import { makeBundle, signingKey } from "./fakes/seeds";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "fg-cli-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("usage and exit codes", () => {
  it("prints help for every command with exit 0", async () => {
    for (const command of ["enroll", "run", "status", "doctor", "version"]) {
      const result = await cli([command, "--help"]);
      expect(result.code, command).toBe(0);
      expect(result.stdout, command).toContain(`Usage: fleetgate-agent ${command}`);
    }
    expect((await cli(["--help"])).stdout).toMatch(/enroll +join this node/);
  });

  it("exits 2 with the command's usage on bad input", async () => {
    const cases = [
      [],
      ["nope"],
      ["status", "--bogus"],
      ["status", "extra-positional"],
      ["enroll", "--key", "k"],
      ["enroll", "--master", "http://m", "--key", "k", "--listen", "3128"],
      ["enroll", "--master", "ftp://m", "--key", "k"],
      ["enroll", "--master", "http://m", "--key", "k", "--driver", "nginx"],
    ];
    for (const args of cases) {
      const result = await cli(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr, args.join(" ")).toMatch(/Usage: fleetgate-agent/);
    }
  });

  it("parses HOST:PORT and [IPv6]:PORT listen addresses", () => {
    expect(parseListen("0.0.0.0:3128")).toEqual({ host: "0.0.0.0", port: 3128 });
    expect(parseListen("[::]:8080")).toEqual({ host: "::", port: 8080 });
    expect(() => parseListen("host:70000")).toThrow(/HOST:PORT/);
  });

  it("prints the version", async () => {
    expect(await cli(["version"])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^fleetgate-agent \S+\n$/),
    });
  });
});

describe("enroll", () => {
  it("stores config and 0600 credentials, and re-enrolling keeps the instance id", async () => {
    const master = await fakeMaster(() => enrollAnswer());
    try {
      const first = await cli(
        ["enroll", "--master", `${master.url}/`, "--key", "fge_k", "--listen", "127.0.0.1:3999"],
        {
          FLEETGATE_STATE_DIR: dir,
        },
      );
      expect(first.stderr).toBe("");
      expect(first.code).toBe(0);
      expect(first.stdout).toContain("Enrolled node node_test1");
      const state = new StateDir(dir);
      const config = await state.readConfig();
      expect(config).toMatchObject({
        masterUrl: master.url,
        listen: "127.0.0.1:3999",
        driver: "builtin",
        nodeId: "node_test1",
        pollWaitSeconds: 20,
      });
      expect((await stat(state.credentialsPath)).mode & 0o777).toBe(0o600);
      expect(await state.readCredentials()).toMatchObject({ nodeToken: "fgn_secret-token" });
      expect(JSON.parse(master.requests[0]!.body)).toMatchObject({
        enrollmentKey: "fge_k",
        proxyKind: "builtin",
        instanceId: config!.instanceId,
      });
      expect(master.requests[0]!.url).toBe("/api/agent/v1/enroll");

      await cli(["enroll", "--master", master.url, "--key", "fge_k2", "--state-dir", dir]);
      expect(JSON.parse(master.requests[1]!.body).instanceId).toBe(config!.instanceId);
      expect((await state.readConfig())!.listen).toBe("127.0.0.1:3999"); // kept when not given again
      const events = (await readFile(state.eventsPath, "utf8"))
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(events.map((e) => e.event)).toEqual(["enrolled", "enrolled"]);
      expect(JSON.stringify(events)).not.toContain("fgn_secret-token");
    } finally {
      await master.close();
    }
  });

  it("drops the cached policy when the master's signing key changed", async () => {
    let key = "pk-one";
    const master = await fakeMaster(() => enrollAnswer(key));
    try {
      await cli(["enroll", "--master", master.url, "--key", "k", "--state-dir", dir]);
      const state = new StateDir(dir);
      await state.saveLastGood(
        await makeBundle(await signingKey(), 1, { rules: [], defaultAction: "allow" }),
      );
      await cli(["enroll", "--master", master.url, "--key", "k", "--state-dir", dir]);
      expect(await state.loadLastGood()).not.toBeNull();
      key = "pk-two";
      await cli(["enroll", "--master", master.url, "--key", "k", "--state-dir", dir]);
      expect(await state.loadLastGood()).toBeNull();
    } finally {
      await master.close();
    }
  });

  it("explains a refused key or address and exits 1", async () => {
    const master = await fakeMaster((req) =>
      req.url?.includes("enroll")
        ? {
            status: 401,
            body: { error: { code: "ENROLLMENT_KEY_INVALID", message: "key expired", requestId: "r1" } },
          }
        : { status: 404 },
    );
    try {
      const result = await cli(["enroll", "--master", master.url, "--key", "old", "--state-dir", dir]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/key expired \[ENROLLMENT_KEY_INVALID\]/);
      expect(result.stderr).toMatch(/create a new one/);
      expect((await new StateDir(dir).readConfig())?.nodeId).toBeNull(); // instance id kept for the retry
    } finally {
      await master.close();
    }
  });
});

describe("run, status, doctor without a usable enrollment", () => {
  it("status says not enrolled with exit 1", async () => {
    const result = await cli(["status", "--state-dir", dir]);
    expect(result).toMatchObject({ code: 1, stdout: expect.stringContaining("Not enrolled") });
    const json = await cli(["status", "--state-dir", dir, "--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject({ enrolled: false, running: false, enforcing: "unknown" });
  });

  it("run refuses when not enrolled, and a squid node whose squid.conf is missing", async () => {
    expect((await cli(["run", "--state-dir", dir])).stderr).toMatch(/not enrolled/);
    const master = await fakeMaster(() => enrollAnswer());
    try {
      await cli(["enroll", "--master", master.url, "--key", "k", "--state-dir", dir, "--driver", "squid"]);
      // Paths inside the test dir: this machine's own /etc/squid is never touched.
      const configPath = path.join(dir, "config.json");
      const config = JSON.parse(await readFile(configPath, "utf8"));
      config.squid = {
        confPath: path.join(dir, "no-squid.conf"),
        includePath: path.join(dir, "conf.d/fleetgate.conf"),
        accessLogPath: path.join(dir, "fleetgate-access.log"),
        socketPath: path.join(dir, "helper.sock"),
        socketGroup: String(process.getgid?.() ?? 0),
      };
      await writeFile(configPath, JSON.stringify(config));
      const result = await cli(["run", "--state-dir", dir]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /cannot start the proxy on .*: cannot read squid.conf at .*no-squid.conf/,
      );
    } finally {
      await master.close();
    }
  });

  it("doctor points at enroll when there is nothing to check", async () => {
    const result = await cli(["doctor", "--state-dir", dir]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/✗ node enrolled .*\n {4}fix: fleetgate-agent enroll/);
  });
});

describe("status of an enrolled node", () => {
  it("reports the running agent's policy, contact, error and cache", async () => {
    const master = await fakeMaster(() => enrollAnswer());
    await cli(["enroll", "--master", master.url, "--key", "k", "--state-dir", dir]);
    await master.close();
    const state = new StateDir(dir);
    await writeFile(
      state.runtimePath,
      JSON.stringify({
        pid: process.pid,
        startedAt: "2026-01-01T00:00:00.000Z",
        updatedAt: "2026-01-01T00:00:00.000Z",
        enforcing: "policy",
        appliedVersion: 7,
        appliedHash: "hash7",
        appliedAt: "2026-01-01T00:00:01.000Z",
        lastContactAt: new Date().toISOString(),
        lastError: null,
        lastRefusal: "bundle v8 refused: signature does not verify",
        master: "ok",
        listen: "0.0.0.0:3128",
        proxyKind: "builtin",
        proxyVersion: "x",
        spool: { pendingChunks: 0, pendingBytes: 0, oldestPendingAt: null, droppedRecords: 0 },
      }),
    );
    const json = JSON.parse((await cli(["status", "--state-dir", dir, "--json"])).stdout);
    expect(json).toMatchObject({
      enrolled: true,
      nodeId: "node_test1",
      running: true,
      enforcing: "policy",
      policy: { version: 7, hash: "hash7" },
      master: { state: "ok" },
      lastRefusal: expect.stringMatching(/v8 refused/),
      cachedPolicy: null,
    });
    const text = await cli(["status", "--state-dir", dir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/Enforcing +policy v7/);
    expect(text.stdout).toMatch(/Refused +bundle v8 refused/);
  });
});

describe("spool settings in config.json", () => {
  async function enrolled(extra: string[] = []) {
    const master = await fakeMaster(() => enrollAnswer());
    try {
      return await cli(["enroll", "--master", master.url, "--key", "k", "--state-dir", dir, ...extra]);
    } finally {
      await master.close();
    }
  }

  it("enroll --spool-quota-mb stores the quota; re-enrolling keeps the spool block", async () => {
    expect((await enrolled(["--spool-quota-mb", "512"])).code).toBe(0);
    const state = new StateDir(dir);
    expect((await state.readConfig())?.spool).toEqual({ quotaBytes: 512 * 1024 * 1024 });
    // Other settings edited into the file survive a re-enroll; the flag changes only the quota.
    const raw = JSON.parse(await readFile(state.configPath, "utf8"));
    await writeFile(
      state.configPath,
      JSON.stringify({ ...raw, spool: { ...raw.spool, syncIntervalMs: 100 } }),
    );
    await enrolled();
    expect((await state.readConfig())?.spool).toEqual({ quotaBytes: 512 * 1024 * 1024, syncIntervalMs: 100 });
    await enrolled(["--spool-quota-mb", "2048"]);
    expect((await state.readConfig())?.spool).toEqual({
      quotaBytes: 2048 * 1024 * 1024,
      syncIntervalMs: 100,
    });
    // Without a spool block nothing is written: the defaults apply.
    await rm(dir, { recursive: true, force: true });
    await enrolled();
    expect((await state.readConfig())?.spool).toBeUndefined();
  });

  it("re-enrolling keeps a proxy block edited into config.json", async () => {
    expect((await enrolled()).code).toBe(0);
    const state = new StateDir(dir);
    const raw = JSON.parse(await readFile(state.configPath, "utf8"));
    await writeFile(state.configPath, JSON.stringify({ ...raw, proxy: { maxConnections: 500 } }));
    expect((await enrolled()).code).toBe(0);
    expect((await state.readConfig())?.proxy).toEqual({ maxConnections: 500 });
  });

  it("re-enrolling keeps a metrics block; a bad one stops run naming the field", async () => {
    expect((await enrolled()).code).toBe(0);
    const state = new StateDir(dir);
    const raw = JSON.parse(await readFile(state.configPath, "utf8"));
    await writeFile(state.configPath, JSON.stringify({ ...raw, metrics: { listen: "127.0.0.1:9464" } }));
    expect((await enrolled()).code).toBe(0);
    expect((await state.readConfig())?.metrics).toEqual({ listen: "127.0.0.1:9464" });
    await writeFile(
      state.configPath,
      JSON.stringify({ ...raw, metrics: { listen: "127.0.0.1:9464", open: true } }),
    );
    const run = await cli(["run", "--state-dir", dir]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/cannot start: .*metrics/);
  });

  it("refuses a quota that is not a whole number of MiB with a usage error", async () => {
    for (const bad of ["0", "-5", "1.5", "lots"]) {
      const result = await cli([
        "enroll",
        "--master",
        "http://127.0.0.1:9",
        "--key",
        "k",
        "--state-dir",
        dir,
        `--spool-quota-mb=${bad}`,
      ]);
      expect(result.code, bad).toBe(2);
      expect(result.stderr).toMatch(/--spool-quota-mb must be a whole number of MiB/);
    }
  });

  it("reads the proxy block's limits; run stops with exit 1 naming a bad proxy field", async () => {
    await enrolled();
    const state = new StateDir(dir);
    const raw = JSON.parse(await readFile(state.configPath, "utf8"));
    const proxy = { headerTimeoutMs: 5_000, tunnelIdleTimeoutMs: 120_000, maxConnections: 2_000 };
    await writeFile(state.configPath, JSON.stringify({ ...raw, proxy }));
    expect((await state.readConfig())?.proxy).toEqual(proxy);
    for (const [bad, field] of [
      [{ maxConnections: 0 }, /proxy\.maxConnections/],
      [{ headerTimeoutMs: "15s" }, /proxy\.headerTimeoutMs/],
      [{ connectTimeoutMs: 1.5 }, /proxy\.connectTimeoutMs/],
      [{ bodyTimeoutMs: 50 }, /proxy\.bodyTimeoutMs/],
      [{ headerTimeout: 1_000 }, /proxy.*headerTimeout/],
    ] as const) {
      await writeFile(state.configPath, JSON.stringify({ ...raw, proxy: bad }));
      const run = await cli(["run", "--state-dir", dir]);
      expect(run.code, JSON.stringify(bad)).toBe(1);
      expect(run.stderr).toMatch(/^cannot start: .*config\.json: /);
      expect(run.stderr).toMatch(field);
      expect(run.stderr).toMatch(/docs\/proxy\.md/);
    }
  });

  it("run stops at once with exit 1 naming a bad spool field; status says the same", async () => {
    await enrolled();
    const state = new StateDir(dir);
    const raw = JSON.parse(await readFile(state.configPath, "utf8"));
    for (const [spool, field] of [
      [{ quotaBytes: 1000 }, /spool\.quotaBytes/],
      [{ uploadConcurrency: "two" }, /spool\.uploadConcurrency/],
      [{ maxChunkRecords: 60_000 }, /spool\.maxChunkRecords/],
      [{ quotaByte: 1 }, /spool.*quotaByte/],
    ] as const) {
      await writeFile(state.configPath, JSON.stringify({ ...raw, spool }));
      const run = await cli(["run", "--state-dir", dir]);
      expect(run.code, JSON.stringify(spool)).toBe(1);
      expect(run.stderr).toMatch(/^cannot start: .*config\.json: /);
      expect(run.stderr).toMatch(field);
      const status = await cli(["status", "--state-dir", dir]);
      expect(status.code).toBe(1);
      expect(status.stderr).toMatch(field);
    }
  });
});
