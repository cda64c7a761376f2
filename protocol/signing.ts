import { canonicalJson } from "./canonical";
import { fromBase64Url, sha256Base64Url, toBase64Url, utf8 } from "./encoding";

// The signature covers version, issue time and hash, so a bundle cannot be replayed under
// another version number, and the policy body is bound through its hash.
export function signedMessage(version: number, issuedAt: string, hash: string): Uint8Array<ArrayBuffer> {
  return utf8(`fleetgate-policy-v1\n${version}\n${issuedAt}\n${hash}`);
}

export interface NextKey {
  kid: string;
  publicKey: string;
}

/**
 * v2 adds the series (generation) and the announced next signing key: a bundle is ordered by
 * (generation, version), so a master restored from a backup starts a higher generation that nodes
 * accept, while a replayed older bundle stays below what they applied. The next key is signed by
 * the current one, so a node can move its pin without re-enrolling. See docs/architecture.md.
 */
export function signedMessageV2(
  generation: number,
  version: number,
  issuedAt: string,
  hash: string,
  nextKey: NextKey | null,
): Uint8Array<ArrayBuffer> {
  const next = nextKey ? `${nextKey.kid} ${nextKey.publicKey}` : "";
  return utf8(`fleetgate-policy-v2\n${generation}\n${version}\n${issuedAt}\n${hash}\n${next}`);
}

export function policyHash(policy: unknown): Promise<string> {
  return sha256Base64Url(canonicalJson(policy));
}

// PKCS#8 wrapper for a raw 32-byte Ed25519 seed (RFC 8410): WebCrypto imports no raw private keys.
const PKCS8_ED25519_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

export interface SigningKey {
  kid: string;
  publicKey: string;
  privateKey: CryptoKey;
}

export async function importSigningKey(seedBase64Url: string): Promise<SigningKey> {
  const seed = fromBase64Url(seedBase64Url.trim());
  if (seed.length !== 32) throw new Error("signing key must be a base64url 32-byte Ed25519 seed");
  const pkcs8 = new Uint8Array(PKCS8_ED25519_PREFIX.length + 32);
  pkcs8.set(PKCS8_ED25519_PREFIX);
  pkcs8.set(seed, PKCS8_ED25519_PREFIX.length);
  const privateKey = (await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, [
    "sign",
  ])) as CryptoKey;
  const jwk = (await crypto.subtle.exportKey("jwk", privateKey)) as JsonWebKey;
  if (!jwk.x) throw new Error("could not derive the Ed25519 public key");
  const publicKey = jwk.x;
  const kid = await keyId(publicKey);
  return { kid, publicKey, privateKey };
}

export function generateSigningSeed(): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
}

/** An Ed25519 signature of `message`, base64url: every signed thing of ours (bundles, site assertions). */
export async function signMessage(key: SigningKey, message: Uint8Array<ArrayBuffer>): Promise<string> {
  const sig = await crypto.subtle.sign({ name: "Ed25519" }, key.privateKey, message);
  return toBase64Url(new Uint8Array(sig));
}

export function signBundle(
  key: SigningKey,
  version: number,
  issuedAt: string,
  hash: string,
): Promise<string> {
  return signMessage(key, signedMessage(version, issuedAt, hash));
}

export async function signBundleV2(
  key: SigningKey,
  fields: { generation: number; version: number; issuedAt: string; hash: string; nextKey: NextKey | null },
): Promise<string> {
  const message = signedMessageV2(
    fields.generation,
    fields.version,
    fields.issuedAt,
    fields.hash,
    fields.nextKey,
  );
  return signMessage(key, message);
}

/** A key's id: the first 16 characters of the base64url SHA-256 of the raw public key. */
export async function keyId(publicKey: string): Promise<string> {
  return (await sha256Base64Url(fromBase64Url(publicKey))).slice(0, 16);
}

export interface VerifiableBundle {
  version: number;
  hash: string;
  issuedAt: string;
  policy: unknown;
  signature: { kid: string; sig: string };
  generation?: number;
  nextKey?: { kid: string; alg?: string; publicKey: string };
  signatureV2?: { kid: string; sig: string };
}

export type VerifyResult =
  | {
      ok: true;
      /** The series the bundle belongs to; 0 for a bundle signed only with the v1 message. */
      generation: number;
      /** The key whose signature verified. */
      kid: string;
      /** The next key the signer announced (v2 only; its kid checked against its public key). */
      nextKey: NextKey | null;
    }
  | { ok: false; reason: string };

export type TrustedKey = { kid: string; publicKey: string };

/** Whether `sig` (base64url) is `key`'s Ed25519 signature of `message`; throws on a malformed key or signature. */
export async function verifyMessage(
  key: TrustedKey,
  sig: string,
  message: Uint8Array<ArrayBuffer>,
): Promise<boolean> {
  const publicKey = await crypto.subtle.importKey(
    "raw",
    fromBase64Url(key.publicKey),
    { name: "Ed25519" },
    false,
    ["verify"],
  );
  return crypto.subtle.verify({ name: "Ed25519" }, publicKey, fromBase64Url(sig), message);
}

/**
 * Checks the hash over the canonical policy and the Ed25519 signature by one of the trusted keys
 * (the pinned key, and during a rotation the announced next one); never throws. A bundle with a
 * v2 signature is judged by it alone: generation and next key count only when it verifies, so
 * stripping it leaves a generation-0 bundle that orders below anything of a later series.
 */
export async function verifyBundle(
  bundle: VerifiableBundle,
  trusted: TrustedKey | readonly TrustedKey[],
): Promise<VerifyResult> {
  const keys = Array.isArray(trusted) ? trusted : [trusted as TrustedKey];
  try {
    const signature = bundle.signatureV2 ?? bundle.signature;
    const key = keys.find((k) => k.kid === signature.kid);
    if (!key) {
      return {
        ok: false,
        reason: `signed by key ${signature.kid}, pinned key is ${keys.map((k) => k.kid).join(" or ")}`,
      };
    }
    const actualHash = await policyHash(bundle.policy);
    if (actualHash !== bundle.hash) return { ok: false, reason: "policy does not match its hash" };
    if (bundle.signatureV2) {
      const generation = bundle.generation ?? 0;
      const nextKey = bundle.nextKey
        ? { kid: bundle.nextKey.kid, publicKey: bundle.nextKey.publicKey }
        : null;
      const message = signedMessageV2(generation, bundle.version, bundle.issuedAt, bundle.hash, nextKey);
      if (!(await verifyMessage(key, bundle.signatureV2.sig, message))) {
        return { ok: false, reason: "signature does not verify" };
      }
      if (nextKey && (await keyId(nextKey.publicKey)) !== nextKey.kid) {
        return { ok: false, reason: "announced next key does not match its kid" };
      }
      return { ok: true, generation, kid: key.kid, nextKey };
    }
    const valid = await verifyMessage(
      key,
      bundle.signature.sig,
      signedMessage(bundle.version, bundle.issuedAt, bundle.hash),
    );
    return valid
      ? { ok: true, generation: 0, kid: key.kid, nextKey: null }
      : { ok: false, reason: "signature does not verify" };
  } catch (error) {
    return { ok: false, reason: `signature check failed: ${(error as Error).message}` };
  }
}
