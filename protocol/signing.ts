import { canonicalJson } from "./canonical";
import { fromBase64Url, sha256Base64Url, toBase64Url, utf8 } from "./encoding";

// The signature covers version, issue time and hash, so a bundle cannot be replayed under
// another version number, and the policy body is bound through its hash.
export function signedMessage(version: number, issuedAt: string, hash: string): Uint8Array<ArrayBuffer> {
  return utf8(`fleetgate-policy-v1\n${version}\n${issuedAt}\n${hash}`);
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
  const kid = (await sha256Base64Url(fromBase64Url(publicKey))).slice(0, 16);
  return { kid, publicKey, privateKey };
}

export function generateSigningSeed(): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
}

export async function signBundle(
  key: SigningKey,
  version: number,
  issuedAt: string,
  hash: string,
): Promise<string> {
  const sig = await crypto.subtle.sign(
    { name: "Ed25519" },
    key.privateKey,
    signedMessage(version, issuedAt, hash),
  );
  return toBase64Url(new Uint8Array(sig));
}

export interface VerifiableBundle {
  version: number;
  hash: string;
  issuedAt: string;
  policy: unknown;
  signature: { kid: string; sig: string };
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

/** Checks kid, hash over the canonical policy and the Ed25519 signature; never throws. */
export async function verifyBundle(
  bundle: VerifiableBundle,
  pinned: { kid: string; publicKey: string },
): Promise<VerifyResult> {
  try {
    if (bundle.signature.kid !== pinned.kid) {
      return { ok: false, reason: `signed by key ${bundle.signature.kid}, pinned key is ${pinned.kid}` };
    }
    const actualHash = await policyHash(bundle.policy);
    if (actualHash !== bundle.hash) return { ok: false, reason: "policy does not match its hash" };
    const publicKey = await crypto.subtle.importKey(
      "raw",
      fromBase64Url(pinned.publicKey),
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    const valid = await crypto.subtle.verify(
      { name: "Ed25519" },
      publicKey,
      fromBase64Url(bundle.signature.sig),
      signedMessage(bundle.version, bundle.issuedAt, bundle.hash),
    );
    return valid ? { ok: true } : { ok: false, reason: "signature does not verify" };
  } catch (error) {
    return { ok: false, reason: `signature check failed: ${(error as Error).message}` };
  }
}
