import { describe, expect, it } from "vitest";
import {
  generateSigningSeed,
  importSigningKey,
  policyHash,
  signBundle,
  type VerifiableBundle,
  verifyBundle,
} from "../../protocol/signing";

describe("policy bundle signing", () => {
  async function signedBundle() {
    const key = await importSigningKey(generateSigningSeed());
    const policy = {
      rules: [{ id: "no-social", action: "block", match: { domains: ["facebook.com"] } }],
      defaultAction: "allow",
    };
    const hash = await policyHash(policy);
    const issuedAt = "2026-03-04T10:00:00.000Z";
    const bundle: VerifiableBundle = {
      version: 7,
      hash,
      issuedAt,
      policy,
      signature: { kid: key.kid, sig: await signBundle(key, 7, issuedAt, hash) },
    };
    return { key, bundle, pinned: { kid: key.kid, publicKey: key.publicKey } };
  }

  it("sign then verify succeeds", async () => {
    const { bundle, pinned } = await signedBundle();
    expect(await verifyBundle(bundle, pinned)).toEqual({
      ok: true,
      generation: 0,
      kid: pinned.kid,
      nextKey: null,
    });
  });

  it("one changed policy byte fails, even with a recomputed hash", async () => {
    const { bundle, pinned } = await signedBundle();
    const changed = JSON.parse(JSON.stringify(bundle.policy).replace("facebook.com", "facebook.con"));
    expect(await verifyBundle({ ...bundle, policy: changed }, pinned)).toEqual({
      ok: false,
      reason: "policy does not match its hash",
    });
    const rehashed = { ...bundle, policy: changed, hash: await policyHash(changed) };
    expect(await verifyBundle(rehashed, pinned)).toEqual({ ok: false, reason: "signature does not verify" });
  });

  it("another version number or key fails", async () => {
    const { bundle, pinned } = await signedBundle();
    expect((await verifyBundle({ ...bundle, version: 8 }, pinned)).ok).toBe(false);
    const other = await signedBundle();
    expect((await verifyBundle(bundle, other.pinned)).ok).toBe(false);
  });
});
