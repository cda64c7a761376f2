import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_SPOOL_SETTINGS, nodeSpoolSettings, resolveSpoolSettings } from "../../agent/spool/settings";
import { writeFileAtomic } from "../../agent/state/atomic-write";
import { resolveStateDir, StateDir, StateFileError } from "../../agent/state/state-dir";
import { makeBundle, signingKey } from "./fakes/seeds";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "fg-state-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("atomic writes", () => {
  it("replaces the content in one step and leaves no temp files", async () => {
    const file = path.join(dir, "sub", "a.json");
    await writeFileAtomic(file, "one");
    await writeFileAtomic(file, "two");
    expect(await readFile(file, "utf8")).toBe("two");
    expect(await readdir(path.dirname(file))).toEqual(["a.json"]);
  });

  it("leaves the old content and no temp file when the write fails", async () => {
    const file = path.join(dir, "a.json");
    await writeFileAtomic(file, "old");
    // A directory where the temp file's rename target is cannot be replaced by a file.
    const blocked = path.join(dir, "blocked");
    await writeFileAtomic(path.join(blocked, "x"), "x");
    await expect(writeFileAtomic(blocked, "new")).rejects.toThrow();
    expect(await readFile(file, "utf8")).toBe("old");
    expect((await readdir(dir)).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  });

  it("sets the exact mode even under a permissive umask", async () => {
    const file = path.join(dir, "secret");
    const old = process.umask(0o000);
    try {
      await writeFileAtomic(file, "s", { mode: 0o600 });
    } finally {
      process.umask(old);
    }
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });
});

describe("state dir", () => {
  it("prefers --state-dir, then FLEETGATE_STATE_DIR, then /var/lib/fleetgate", () => {
    expect(resolveStateDir("/a", { FLEETGATE_STATE_DIR: "/b" })).toBe("/a");
    expect(resolveStateDir(undefined, { FLEETGATE_STATE_DIR: "/b" })).toBe("/b");
    expect(resolveStateDir(undefined, {})).toBe("/var/lib/fleetgate");
  });

  it("writes credentials.json with mode 0600 and reads it back", async () => {
    const state = new StateDir(dir);
    await state.ensure();
    const credentials = {
      nodeToken: "fgn_secret",
      masterKey: { kid: "k1", alg: "Ed25519" as const, publicKey: "pk" },
    };
    await state.writeCredentials(credentials);
    expect((await stat(state.credentialsPath)).mode & 0o777).toBe(0o600);
    expect(await state.readCredentials()).toEqual(credentials);
  });

  it("round-trips config.json and reports a damaged one by name", async () => {
    const state = new StateDir(dir);
    const config = {
      masterUrl: "https://m.example",
      listen: "0.0.0.0:3128",
      driver: "builtin" as const,
      hostname: "n1",
      instanceId: "inst-12345678",
      nodeId: "node_1",
      pollWaitSeconds: 25,
      enrolledAt: null,
    };
    expect(await state.readConfig()).toBeNull();
    await state.writeConfig(config);
    expect(await state.readConfig()).toEqual(config);
    await writeFile(state.configPath, "{not json");
    await expect(state.readConfig()).rejects.toThrow(StateFileError);
    await writeFile(state.configPath, JSON.stringify({ ...config, masterUrl: "nope" }));
    await expect(state.readConfig()).rejects.toThrow(/masterUrl/);
  });

  it("stores the last-good bundle under policy/ and returns it unparsed", async () => {
    const state = new StateDir(dir);
    const bundle = await makeBundle(await signingKey(), 2, { defaultAction: "allow" });
    expect(await state.loadLastGood()).toBeNull();
    await state.saveLastGood(bundle);
    expect(state.lastGoodPath).toBe(path.join(dir, "policy", "last-good.json"));
    expect(await state.loadLastGood()).toEqual(bundle);
    await writeFile(state.lastGoodPath, "garbage");
    expect(await state.loadLastGood()).toEqual({ unreadable: "last-good.json is not JSON" });
    await state.clearLastGood();
    expect(await state.loadLastGood()).toBeNull();
  });
});

describe("spool settings precedence", () => {
  it("takes config.json's spool block, with FLEETGATE_SPOOL_* on top, defaults for the rest", () => {
    const warnings: string[] = [];
    const settings = nodeSpoolSettings(
      { quotaBytes: 512 * 1024 * 1024, syncIntervalMs: 100, uploadConcurrency: undefined },
      { FLEETGATE_SPOOL_QUOTA_BYTES: "2G", FLEETGATE_SPOOL_CHUNK_RECORDS: "many" },
      (message) => warnings.push(message),
    );
    expect(settings).toEqual({ quotaBytes: 2 * 1024 ** 3, syncIntervalMs: 100 });
    expect(warnings).toEqual(["FLEETGATE_SPOOL_CHUNK_RECORDS=many is not a number: using the default"]);
    expect(resolveSpoolSettings(settings)).toMatchObject({
      quotaBytes: 2 * 1024 ** 3,
      syncIntervalMs: 100,
      maxChunkRecords: DEFAULT_SPOOL_SETTINGS.maxChunkRecords,
      uploadConcurrency: DEFAULT_SPOOL_SETTINGS.uploadConcurrency,
    });
    expect(nodeSpoolSettings(undefined, {})).toEqual({});
  });
});
