// The signing seeds every agent test signs with, and bundles signed the way the master signs them.
// SEED is also the workerd pool's FLEETGATE_SIGNING_KEY (vitest.config.ts) and the e2e master's.
import {
  importSigningKey,
  type NextKey,
  policyHash,
  type SigningKey,
  signBundle,
  signBundleV2,
} from "../../../protocol/signing";
import type { PolicyBundle } from "../../../protocol/wire";

export const SEED = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
export const OTHER_SEED = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

export async function signingKey(seed = SEED): Promise<SigningKey> {
  return importSigningKey(seed);
}

export async function makeBundle(
  key: SigningKey,
  version: number,
  policy: Record<string, unknown>,
): Promise<PolicyBundle> {
  const hash = await policyHash(policy);
  const issuedAt = new Date(1_700_000_000_000 + version * 1000).toISOString();
  return {
    version,
    hash,
    issuedAt,
    policy,
    signature: { kid: key.kid, sig: await signBundle(key, version, issuedAt, hash) },
  };
}

/** A bundle as the master signs it since v2: both signatures, the series and an optional next key. */
export async function makeBundleV2(
  key: SigningKey,
  version: number,
  policy: Record<string, unknown>,
  options: { generation?: number; nextKey?: SigningKey } = {},
): Promise<PolicyBundle> {
  const base = await makeBundle(key, version, policy);
  const generation = options.generation ?? 0;
  const nextKey: NextKey | null = options.nextKey
    ? { kid: options.nextKey.kid, publicKey: options.nextKey.publicKey }
    : null;
  const sig = await signBundleV2(key, {
    generation,
    version,
    issuedAt: base.issuedAt,
    hash: base.hash,
    nextKey,
  });
  return {
    ...base,
    generation,
    ...(nextKey ? { nextKey: { ...nextKey, alg: "Ed25519" as const } } : {}),
    signatureV2: { kid: key.kid, sig },
  };
}
