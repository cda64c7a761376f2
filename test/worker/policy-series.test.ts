import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { importSigningKey, verifyBundle } from "../../protocol/signing";
import type { PolicyBundle } from "../../protocol/wire";
import { getDb } from "../../worker/db/client";
import { type PolicyHead, publishPolicy } from "../../worker/services/policy";
import { announceVersion } from "../../worker/services/policy-hub";
import { call, expectError, json } from "./helpers/api";
import { blockPolicy, createApiToken, enrollNode, publish } from "./helpers/factories";

const NEXT_SEED = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
const actor = {
  actor: { id: "test", name: "test", role: "admin" as const },
  requestId: "req_test",
  address: null,
};

async function bundleOf(nodeToken: string): Promise<PolicyBundle> {
  return json<PolicyBundle>(await call("/api/agent/v1/policy", { token: nodeToken }), 200);
}

describe("a new signed series after a database restore", () => {
  it("republishes the latest policy under a higher generation that orders above the lost versions", async () => {
    const node = await enrollNode();
    for (let i = 1; i <= 3; i++) await publish(blockPolicy(`v${i}.example`), `v${i}`);
    const v3 = await bundleOf(node.nodeToken);
    expect(v3).toMatchObject({ version: 3, generation: 0 });
    expect(await verifyBundle(v3, node.masterKey)).toMatchObject({ ok: true, generation: 0 });

    // The restore: the database goes back to a backup taken at v1; nodes have applied v3.
    await env.DB.prepare("DELETE FROM policy_chunks WHERE version > 1").run();
    await env.DB.prepare("DELETE FROM policy_versions WHERE version > 1").run();
    const before = Date.now();
    const series = await json<{ version: number; generation: number; unchanged: boolean }>(
      await call("/api/v1/policy/series", { body: { message: "restored from backup" } }),
      201,
    );
    expect(series).toMatchObject({ version: 2, unchanged: false });
    expect(series.generation).toBeGreaterThanOrEqual(before);

    const bundle = await bundleOf(node.nodeToken);
    expect(bundle).toMatchObject({ version: 2, generation: series.generation });
    const v1 = await json<{ policy: unknown }>(await call("/api/v1/policy/versions/1"), 200);
    expect(bundle.policy).toEqual(v1.policy);
    const verified = await verifyBundle(bundle, node.masterKey);
    expect(verified).toMatchObject({ ok: true, generation: series.generation });
    // The v1 signature stays for agents that predate v2.
    expect(await verifyBundle({ ...bundle, signatureV2: undefined }, node.masterKey)).toMatchObject({
      ok: true,
      generation: 0,
    });

    // Later publishes stay in the series.
    const next = await json<{ version: number; generation: number }>(
      await call("/api/v1/policy/versions", {
        body: { policy: blockPolicy("v4.example"), message: "after" },
      }),
      201,
    );
    expect(next).toMatchObject({ version: 3, generation: series.generation });
    const audit = await json<{ entries: { action: string }[] }>(await call("/api/v1/audit"), 200);
    expect(audit.entries.map((e) => e.action)).toContain("policy.series");
  });

  it("needs an admin", async () => {
    await publish(blockPolicy("x.example"));
    const viewer = (await createApiToken("viewer")).token;
    await expectError(await call("/api/v1/policy/series", { token: viewer, body: {} }), 403, "FORBIDDEN");
    await expectError(await call("/api/v1/policy/series", { token: null, body: {} }), 401, "UNAUTHORIZED");
  });
});

describe("signing-key rotation", () => {
  it("every bundle announces the next key, signed by the current one; after the switch the new key signs", async () => {
    const node = await enrollNode();
    const db = getDb(env.DB);
    // Publishing outside the API still hands the hubs the new head, as every publish path does.
    const notify = (head: PolicyHead) => announceVersion(env, head);
    const next = await importSigningKey(NEXT_SEED);
    const seeds = { current: env.FLEETGATE_SIGNING_KEY, next: NEXT_SEED };
    await publishPolicy({
      db,
      seeds,
      actor,
      notify,
      input: { policy: blockPolicy("a.example"), message: "announce" },
    });
    const announced = await bundleOf(node.nodeToken);
    expect(announced.nextKey).toEqual({ kid: next.kid, alg: "Ed25519", publicKey: next.publicKey });
    expect(await verifyBundle(announced, node.masterKey)).toMatchObject({
      ok: true,
      nextKey: { kid: next.kid, publicKey: next.publicKey },
    });

    // The switch: the next seed becomes FLEETGATE_SIGNING_KEY, and a new series re-signs the head.
    await publishPolicy({
      db,
      seeds: { current: NEXT_SEED },
      actor,
      notify,
      input: { policy: blockPolicy("a.example"), message: "switch", newSeries: true },
    });
    const switched = await bundleOf(node.nodeToken);
    expect(switched.signatureV2?.kid).toBe(next.kid);
    expect(switched.nextKey).toBeUndefined();
    expect((await verifyBundle(switched, node.masterKey)).ok).toBe(false);
    expect(
      await verifyBundle(switched, [node.masterKey, { kid: next.kid, publicKey: next.publicKey }]),
    ).toMatchObject({
      ok: true,
      kid: next.kid,
    });
  });
});
