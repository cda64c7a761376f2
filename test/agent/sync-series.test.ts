// Master restore (a new signed series) and signing-key rotation, as the node's sync loop sees them.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { StateDir } from "../../agent/state/state-dir";
import { SyncLoop } from "../../agent/sync/loop";
import { verifyBundle } from "../../protocol/signing";
import { makeBundle, makeBundleV2, OTHER_SEED, signingKey } from "./fakes/seeds";
import { setup } from "./fakes/sync";

const signal = new AbortController().signal;
const policy = (n: number) => ({ rules: [], defaultAction: n % 2 ? "allow" : "block", n });
const pinOf = (key: { kid: string; publicKey: string }) => ({
  kid: key.kid,
  alg: "Ed25519" as const,
  publicKey: key.publicKey,
});

describe("a master restored from a backup starts a new series", () => {
  it("a node on v100 refuses the restored v91 (naming the fix), then accepts v91 of a new series", async () => {
    const t = await setup();
    t.master.current = await makeBundle(t.key, 100, policy(100));
    await t.loop.pollOnce(signal);
    t.master.current = await makeBundleV2(t.key, 91, policy(91));
    await t.loop.pollOnce(signal);
    expect(t.loop.snapshot().lastRefusal).toMatch(
      /v91 is older than the applied v100.*POST \/api\/v1\/policy\/series/,
    );
    const generation = Date.UTC(2026, 11, 2);
    t.master.current = await makeBundleV2(t.key, 91, policy(92), { generation });
    await t.loop.pollOnce(signal);
    expect(t.driver.applied).toEqual([100, 91]);
    expect(t.loop.snapshot()).toMatchObject({ appliedVersion: 91, lastRefusal: null });
  });

  it("replays cannot downgrade: an old series' higher version, a stripped v2 signature, a forged generation", async () => {
    const t = await setup();
    const old100 = await makeBundleV2(t.key, 100, policy(100), { generation: 5 });
    const new91 = await makeBundleV2(t.key, 91, policy(91), { generation: 9 });
    t.master.current = new91;
    await t.loop.pollOnce(signal);
    expect(t.driver.applied).toEqual([91]);

    t.master.current = old100;
    await t.loop.pollOnce(signal);
    expect(t.loop.snapshot().lastRefusal).toMatch(
      /v100 of series 5 is older than the applied v91 of series 9/,
    );

    // The same bundle without its v2 signature counts as series 0: lower still.
    const {
      signatureV2: _s,
      generation: _g,
      ...stripped
    } = await makeBundleV2(t.key, 200, policy(200), {
      generation: 9,
    });
    t.master.current = stripped;
    await t.loop.pollOnce(signal);
    expect(t.loop.snapshot().lastRefusal).toMatch(/v200 is older than the applied v91 of series 9/);

    // A higher generation written into a signed bundle breaks its signature.
    const forged = { ...(await makeBundleV2(t.key, 92, policy(93), { generation: 9 })), generation: 10 };
    t.master.current = forged;
    await t.loop.pollOnce(signal);
    expect(t.loop.snapshot().lastRefusal).toMatch(/v92 refused: signature does not verify/);
    expect(t.driver.applied).toEqual([91]);
  });
});

describe("signing-key rotation without re-enrolling", () => {
  it("the pinned key announces the next; the first bundle signed by it moves the pin and retires the old key", async () => {
    const t = await setup();
    const next = await signingKey(OTHER_SEED);
    t.master.current = await makeBundleV2(t.key, 1, policy(1), { nextKey: next });
    await t.loop.pollOnce(signal);
    expect(t.driver.applied).toEqual([1]);
    expect(t.store.keys).toEqual([{ masterKey: pinOf(t.key), nextMasterKey: pinOf(next) }]);

    t.master.current = await makeBundleV2(next, 2, policy(2), { generation: 7 });
    await t.loop.pollOnce(signal);
    expect(t.driver.applied).toEqual([1, 2]);
    expect(t.store.keys.at(-1)).toEqual({ masterKey: pinOf(next) });
    expect(t.events.types()).toContain("sync.key_rotated");

    // The retired key no longer verifies anything, even a newer version.
    t.master.current = await makeBundleV2(t.key, 3, policy(3), { generation: 7 });
    await t.loop.pollOnce(signal);
    expect(t.loop.snapshot().lastRefusal).toMatch(/v3 refused: signed by key .*, pinned key is /);
    expect(t.driver.applied).toEqual([1, 2]);
  });

  it("a next key whose kid does not match its public key, or a bundle by an unannounced key, is refused", async () => {
    const t = await setup();
    const next = await signingKey(OTHER_SEED);
    const lying = await makeBundleV2(t.key, 1, policy(1), { nextKey: next });
    expect(
      await verifyBundle({ ...lying, nextKey: { ...lying.nextKey!, kid: t.key.kid } }, pinOf(t.key)),
    ).toMatchObject({
      ok: false,
    });
    t.master.current = await makeBundleV2(next, 1, policy(1));
    await t.loop.pollOnce(signal);
    expect(t.driver.applied).toEqual([]);
    expect(t.loop.snapshot().lastRefusal).toMatch(/signed by key/);
  });

  it("the moved pin lands in credentials.json and a restarted agent enforces its cache signed by the new key", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "fg-rotate-"));
    try {
      const t = await setup();
      const next = await signingKey(OTHER_SEED);
      const state = new StateDir(dir);
      await state.writeCredentials({ nodeToken: "fgn_token", masterKey: pinOf(t.key) });
      const loop = new SyncLoop({ ...t.options, store: state });
      t.master.current = await makeBundleV2(t.key, 1, policy(1), { nextKey: next });
      await loop.pollOnce(signal);
      expect(await state.readCredentials()).toEqual({
        nodeToken: "fgn_token",
        masterKey: pinOf(t.key),
        nextMasterKey: pinOf(next),
      });
      t.master.current = await makeBundleV2(next, 2, policy(2));
      await loop.pollOnce(signal);
      const credentials = await state.readCredentials();
      expect(credentials).toEqual({ nodeToken: "fgn_token", masterKey: pinOf(next) });

      const restarted = await setup({ masterKey: credentials!.masterKey });
      const again = new SyncLoop({ ...restarted.options, store: state });
      await again.restoreFromCache();
      expect(restarted.driver.applied).toEqual([2]);
      expect(again.snapshot()).toMatchObject({ enforcing: "policy", appliedVersion: 2 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
