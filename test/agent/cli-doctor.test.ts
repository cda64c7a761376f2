import * as nodeFs from "node:fs/promises";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { systemClock } from "../../agent/clock";
import { judgeDisk, judgeSkew } from "../../agent/doctor/checks";
import { DiskSpool } from "../../agent/spool/disk-spool";
import { writeMeta } from "../../agent/spool/meta";
import { acquireRunLock } from "../../agent/state/run-lock";
import type { RuntimeState } from "../../agent/state/schemas";
import { StateDir } from "../../agent/state/state-dir";
import { cli, enrollAt, fakeMaster, freePort } from "./fakes/cli";
import { enrollAnswer, type Route } from "./fakes/master";
import { makeBundle, signingKey } from "./fakes/seeds";
import { record } from "./fakes/spool";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "fg-doctor-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * What a running agent leaves for doctor: its run lock (held by this test process, which is alive)
 * and a runtime.json enforcing `version`.
 */
async function pretendRunning(state: StateDir, version: number | null, extra: Partial<RuntimeState> = {}) {
  const lock = await acquireRunLock(state.root);
  const now = new Date().toISOString();
  await state.writeRuntime({
    pid: process.pid,
    startedAt: now,
    updatedAt: now,
    enforcing: version === null ? "fail-closed" : "policy",
    appliedVersion: version,
    appliedHash: null,
    appliedAt: version === null ? null : now,
    lastContactAt: now,
    lastError: null,
    lastRefusal: null,
    master: "ok",
    listen: "127.0.0.1:3128",
    proxyKind: "builtin",
    proxyVersion: "test",
    spool: { pendingChunks: 0, pendingBytes: 0, oldestPendingAt: null, droppedRecords: 0 },
    ...extra,
  });
  return lock;
}

/** Enrolls against a fake master whose policy endpoint answers with `policy`, then runs doctor. */
async function doctorWith(
  policy: Route,
  withCache = false,
  prepare?: (state: StateDir) => Promise<void>,
  running: Partial<RuntimeState> | null = {},
) {
  const key = await signingKey();
  const master = await fakeMaster((req, body) =>
    req.url?.includes("/enroll") ? enrollAnswer(key.publicKey) : policy(req, body),
  );
  try {
    await enrollAt(master.url, dir);
    const state = new StateDir(dir);
    // enrollAnswer pins kid "kid-<publicKey>"; sign the cache with the matching kid.
    if (withCache) {
      const bundle = await makeBundle({ ...key, kid: `kid-${key.publicKey}` }, 1, {
        rules: [],
        defaultAction: "allow",
      });
      await state.saveLastGood(bundle);
    }
    await prepare?.(state);
    const lock = running ? await pretendRunning(state, 1, running) : null;
    try {
      return { ...(await cli(["doctor", "--state-dir", dir])), requests: master.requests };
    } finally {
      await lock?.release();
    }
  } finally {
    await master.close();
  }
}

describe("doctor", () => {
  it("passes every check against a healthy master", async () => {
    const result = await doctorWith(
      () => ({ status: 304, headers: { date: new Date().toUTCString() } }),
      true,
    );
    expect(result.stdout).toMatch(/✓ master host 127\.0\.0\.1 resolves — is an IP address/);
    expect(result.stdout).toMatch(/✓ TCP connect to 127\.0\.0\.1:\d+/);
    expect(result.stdout).toMatch(/✓ node token accepted by master — up to date \(304\)/);
    expect(result.stdout).toMatch(/✓ clock skew vs master/);
    expect(result.stdout).toMatch(new RegExp(`✓ agent running — pid ${process.pid}, since `));
    expect(result.stdout).toMatch(/✓ enforcing the master's latest policy — v1, the master's latest/);
    expect(result.stdout).toMatch(/✓ disk space for .* free of .*%\)/);
    expect(result.stdout).toMatch(/✓ proxy port 127\.0\.0\.1:\d+ — free/);
    expect(result.stdout).toMatch(/✓ state dir .* writable/);
    expect(result.stdout).toMatch(/✓ cached policy present and verifying — v1/);
    expect(result.stdout).toMatch(
      /✓ log spool — 0 chunks \/ 0 B pending, 0 records dropped, 0 chunks quarantined\n/,
    );
    expect(result.stdout).toMatch(/All checks passed\.\n$/);
    expect(result.code).toBe(0);
    expect(result.requests.at(-1)).toMatchObject({ method: "GET", url: "/api/agent/v1/policy?wait=0" });
    expect(result.requests.at(-1)?.headers.authorization).toBe("Bearer fgn_secret-token");
  });

  it("says to re-enroll when the token is refused", async () => {
    const result = await doctorWith(() => ({
      status: 401,
      body: { error: { code: "NODE_UNKNOWN", message: "unknown node", requestId: "r" } },
    }));
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /✗ node token accepted by master — NODE_UNKNOWN.*\n {4}fix: revoked or unknown: re-enroll/,
    );
    expect(result.stdout).toMatch(/! cached policy present and verifying — no cached policy/);
  });

  it("names the allow list on IP_NOT_ALLOWED", async () => {
    const result = await doctorWith(() => ({
      status: 403,
      body: { error: { code: "IP_NOT_ALLOWED", message: "no", requestId: "r" } },
    }));
    expect(result.stdout).toMatch(/fix: add this node's address to the master's agent allow list/);
  });

  it("fails a tampered cache with a hint", async () => {
    const key = await signingKey();
    const master = await fakeMaster((req) =>
      req.url?.includes("/enroll") ? enrollAnswer(key.publicKey) : { status: 304 },
    );
    try {
      await enrollAt(master.url, dir);
      const bundle = await makeBundle({ ...key, kid: `kid-${key.publicKey}` }, 3, {
        rules: [],
        defaultAction: "block",
      });
      await new StateDir(dir).saveLastGood({ ...bundle, policy: { rules: [], defaultAction: "allow" } });
      const result = await cli(["doctor", "--state-dir", dir]);
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(
        /✗ cached policy present and verifying — v3: policy does not match its hash/,
      );
    } finally {
      await master.close();
    }
  });

  it("reports a dead master as a TCP failure and skips what depends on it", async () => {
    const result = await doctorWith(() => ({ status: 304 }));
    // Re-run against a port nobody listens on by pointing config at it.
    const state = new StateDir(dir);
    const config = (await state.readConfig())!;
    await state.writeConfig({ ...config, masterUrl: `http://127.0.0.1:${await freePort()}` });
    const dead = await cli(["doctor", "--state-dir", dir]);
    expect(result.code).toBe(0);
    expect(dead.code).toBe(1);
    expect(dead.stdout).toMatch(/✗ TCP connect .* ECONNREFUSED\n {4}fix: nothing accepts connections/);
    expect(dead.stdout).toMatch(/- node token accepted by master — skipped: master unreachable/);
  });

  it("warns about clock skew beyond 30 s", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(judgeSkew(new Date(now - 45_000).toUTCString(), now)).toMatchObject({
      status: "warn",
      detail: expect.stringMatching(/^\+45 s/),
    });
    expect(judgeSkew(new Date(now + 10_000).toUTCString(), now)).toMatchObject({ status: "ok" });
    expect(judgeSkew(null, now)).toMatchObject({ status: "skip" });
  });

  it("warns about quarantined chunks and dropped records, naming the quarantine dir and what to check", async () => {
    const healthy = () => ({ status: 304, headers: { date: new Date().toUTCString() } });
    const result = await doctorWith(healthy, true, async (state) => {
      const spool = path.join(state.root, "spool");
      await mkdir(path.join(spool, "quarantine"), { recursive: true });
      await writeFile(path.join(spool, "quarantine", "abcdefgh1234.3.r10.t1700000000000.ndjson.gz"), "x");
      await writeMeta(nodeFs, spool, {
        format: 1,
        epoch: "abcdefgh1234",
        createdAt: new Date().toISOString(),
        nextSeq: 5,
        sealedSegment: 0,
        droppedRecords: 40,
        split: null,
        dropping: [],
      });
    });
    expect(result.stdout).toMatch(
      /! log spool — 0 chunks \/ 0 B pending, 40 records dropped, 1 chunks quarantined/,
    );
    expect(result.stdout).toContain(
      `fix: 1 chunk(s) the master refused for good are kept in ${path.join(dir, "spool", "quarantine")}`,
    );
    expect(result.stdout).toMatch(/spool\.quarantined events/);
    expect(result.stdout).toMatch(/fix: 40 record\(s\) dropped: the spool reached its disk quota \(1\.0 GiB/);
    expect(result.stdout).toMatch(/--spool-quota-mb/);
    // Warnings, not failures: the proxy is fine.
    expect(result.stdout).toMatch(/All checks passed \(1 warning\(s\)\)/);
    expect(result.code).toBe(0);

    const status = await cli(["status", "--state-dir", dir]);
    expect(status.stdout).toMatch(
      /Spool +0 chunks \/ 0 B pending, 40 records dropped, 1 chunks quarantined\n +see: fleetgate-agent doctor/,
    );
  });
});

describe("doctor: what a healthy-looking node still gets wrong", () => {
  const healthy = () => ({ status: 304, headers: { date: new Date().toUTCString() } });

  it("fails when no agent holds the run lock (never started, or crashed leaving its lock)", async () => {
    const result = await doctorWith(healthy, true, undefined, null);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /✗ agent running — not running\n {4}fix: start it: systemctl start fleetgate-agent/,
    );
    await writeFile(
      path.join(dir, "run.lock"),
      JSON.stringify({ pid: 2 ** 22 + 999, startTicks: 1, startedAt: "x" }),
    );
    const stale = await cli(["doctor", "--state-dir", dir]);
    expect(stale.code).toBe(1);
    expect(stale.stdout).toMatch(
      /✗ agent running — not running \(pid \d+ is gone; it left its lock behind\)/,
    );
  });

  it("fails when the node refuses the master's policy, or the master holds a newer one", async () => {
    const refusing = await doctorWith(healthy, true, undefined, {
      lastRefusal: "bundle v91 is older than the applied v100 (if the master's database was restored…)",
    });
    expect(refusing.code).toBe(1);
    expect(refusing.stdout).toMatch(
      /✗ enforcing the master's latest policy — refusing the master's policy \(enforcing v1\): bundle v91 is older/,
    );
    expect(refusing.stdout).toMatch(/POST \/api\/v1\/policy\/series/);

    const key = await signingKey();
    const newer = await makeBundle({ ...key, kid: `kid-${key.publicKey}` }, 2, {
      rules: [],
      defaultAction: "allow",
    });
    const behind = await doctorWith(
      () => ({ status: 200, body: newer, headers: { date: new Date().toUTCString() } }),
      true,
    );
    expect(behind.code).toBe(1);
    expect(behind.stdout).toMatch(/✓ node token accepted by master — policy served \(200\): v2/);
    expect(behind.stdout).toMatch(
      /✗ enforcing the master's latest policy — behind: the master has a newer policy \(v2\) than the v1 this node enforces/,
    );
  });

  it("fails on a backlog older than an hour, naming where to look", async () => {
    const result = await doctorWith(healthy, true, async (state) => {
      const spool = await DiskSpool.open({
        dir: path.join(state.root, "spool"),
        clock: systemClock,
        random: Math.random,
      });
      spool.write({ ...record(0), ts: new Date(Date.now() - 2 * 3_600_000).toISOString() });
      await spool.close();
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/✗ log spool — 1 chunks \/ .* pending/);
    expect(result.stdout).toMatch(
      /fix: the oldest record waiting for upload is 1\d\d min old: uploads are not getting through/,
    );
  });

  it("judges free disk space: fail under 5% or 100 MiB, warn under 10%", () => {
    const GiB = 1024 ** 3;
    expect(judgeDisk("/s", 50 * GiB, 100 * GiB)).toMatchObject({ status: "ok" });
    expect(judgeDisk("/s", 8 * GiB, 100 * GiB)).toMatchObject({ status: "warn" });
    expect(judgeDisk("/s", 4 * GiB, 100 * GiB)).toMatchObject({
      status: "fail",
      detail: expect.stringMatching(/GiB free of .* GiB \(4%\)/),
    });
    expect(judgeDisk("/s", 50 * 1024 ** 2, GiB / 2)).toMatchObject({ status: "fail" });
  });
});
