// A bundle is named by (generation, version, hash) in the long poll and in the loop's skip, so a
// new series or a rotation step that republishes unchanged content still reaches a node holding it.
import { describe, expect, it } from "vitest";
import { bundleTag } from "../../protocol/wire";
import { makeBundle, makeBundleV2, OTHER_SEED, signingKey } from "./fakes/seeds";
import { setup } from "./fakes/sync";

const signal = new AbortController().signal;
const same = { rules: [], defaultAction: "allow" };
const pinOf = (key: { kid: string; publicKey: string }) => ({
  kid: key.kid,
  alg: "Ed25519" as const,
  publicKey: key.publicKey,
});

describe("bundle tags: (generation, version, hash)", () => {
  it("a rotation step that republishes unchanged content is applied and moves the pin", async () => {
    const t = await setup();
    t.master.tags = true;
    const next = await signingKey(OTHER_SEED);
    const first = await makeBundleV2(t.key, 1, same, { nextKey: next });
    t.master.current = first;
    await t.loop.pollOnce(signal);
    expect(t.store.keys).toEqual([{ masterKey: pinOf(t.key), nextMasterKey: pinOf(next) }]);
    // Held with the applied bundle's tag, not its hash.
    await t.loop.pollOnce(signal);
    expect(t.master.polls[1]?.etag).toBe(bundleTag(first));

    // Step 2 of the rotation: a new series signed by the next key, same policy, same hash.
    const series = await makeBundleV2(next, 2, same, { generation: 7 });
    expect(series.hash).toBe(first.hash);
    t.master.current = series;
    await t.loop.pollOnce(signal);
    expect(t.driver.applied).toEqual([1, 2]);
    expect(t.store.keys.at(-1)).toEqual({ masterKey: pinOf(next) });
    expect(t.loop.snapshot()).toMatchObject({ appliedVersion: 2, lastRefusal: null });
    await t.loop.pollOnce(signal);
    expect(t.master.polls.at(-1)?.etag).toBe(bundleTag(series));
  });

  it("the same (generation, version) sent again is skipped without a second apply", async () => {
    const t = await setup();
    t.master.tags = true;
    t.master.current = await makeBundleV2(t.key, 3, same, { generation: 2 });
    await t.loop.pollOnce(signal);
    // A master ignoring If-None-Match, under another ETag spelling: still the applied bundle.
    t.master.queue.push(Response.json(t.master.current, { headers: { etag: '"other-name"' } }));
    await t.loop.pollOnce(signal);
    expect(t.driver.applied).toEqual([3]);
  });

  it("against a master before tags (ETag = hash) it falls back to hashes after one answer, without spinning", async () => {
    const t = await setup();
    const bundle = await makeBundle(t.key, 4, same);
    const cached = await setup({}, bundle);
    await cached.loop.restoreFromCache();
    cached.master.current = bundle;
    await cached.loop.pollOnce(signal);
    await cached.loop.pollOnce(signal);
    await cached.loop.pollOnce(signal);
    const etags = cached.master.polls.map((p) => p.etag);
    // The first poll names the cached bundle by tag, the old master answers it by hash, and from
    // then on the node asks by hash: held (304), not answered again.
    expect(etags).toEqual([bundleTag(bundle), bundle.hash, bundle.hash]);
    expect(cached.driver.applied).toEqual([4]);
    expect(cached.master.statuses).toEqual([]);
  });
});
