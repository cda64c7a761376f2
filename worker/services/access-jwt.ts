// Cloudflare Access single sign-on: Access puts a signed JWT in `Cf-Access-Jwt-Assertion` on
// every request it lets through. We verify it ourselves (RS256 over the team's JWKS, aud, iss,
// exp, nbf) instead of trusting the header's presence, so a request that bypasses Access with a
// made-up header is refused.

import { fromBase64Url, utf8 } from "../../protocol/encoding";
import type { AccessConfig } from "../config";
import type { Role } from "../env";
import { AppError } from "../errors";

export type { AccessConfig };

/** Returns the team's signing keys; `refresh` asks for a fresh copy (an unknown kid appeared). */
export type AccessKeySource = (issuer: string, refresh: boolean) => Promise<JsonWebKey[]>;

export interface AccessIdentity {
  email: string;
  groups: string[];
  role: Role | null;
}

const CACHE_MS = 10 * 60_000;
const MIN_REFRESH_MS = 60_000;
const CLOCK_SKEW_S = 60;

let cache: { issuer: string; keys: JsonWebKey[]; at: number } | undefined;
// A failed fetch is remembered briefly so an Access outage is not a fetch per request.
let failure: { issuer: string; at: number } | undefined;
const FAILURE_CACHE_S = 30;
const FETCH_TIMEOUT_MS = 5_000;

const unavailable = () =>
  new AppError(
    "UNAVAILABLE",
    "Cloudflare Access signing keys could not be fetched; try again shortly",
    undefined,
    { "Retry-After": String(FAILURE_CACHE_S) },
  );

const fetchTeamKeys: AccessKeySource = async (issuer, refresh) => {
  const now = Date.now();
  const known = cache?.issuer === issuer ? cache : undefined;
  if (known && now - known.at < (refresh ? MIN_REFRESH_MS : CACHE_MS)) return known.keys;
  // Stale keys beat none while the certs endpoint is failing.
  if (failure?.issuer === issuer && now - failure.at < FAILURE_CACHE_S * 1000) {
    if (known) return known.keys;
    throw unavailable();
  }
  let keys: JsonWebKey[];
  try {
    const response = await fetch(`${issuer}/cdn-cgi/access/certs`, {
      headers: { Accept: "application/json" },
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    if (!response.ok) throw new Error(`Access certs answered ${response.status}`);
    const body = (await response.json()) as { keys?: unknown };
    if (!Array.isArray(body.keys)) throw new Error("Access certs without a keys array");
    keys = body.keys as JsonWebKey[];
  } catch (error) {
    failure = { issuer, at: now };
    console.error(JSON.stringify({ accessCerts: issuer, error: String(error) }));
    if (known) return known.keys;
    throw unavailable();
  }
  failure = undefined;
  cache = { issuer, keys, at: now };
  return keys;
};

let keySource: AccessKeySource = fetchTeamKeys;

/** Tests hand in keys they generated; `null` restores the real JWKS fetch. */
export function setAccessKeySource(source: AccessKeySource | null) {
  keySource = source ?? fetchTeamKeys;
  cache = undefined;
  failure = undefined;
}

function decodeJson(part: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(new TextDecoder().decode(fromBase64Url(part)));
    return value && typeof value === "object" ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

async function verifySignature(keys: JsonWebKey[], kid: unknown, signed: string, signature: Uint8Array) {
  const key = keys.find((k) => (k as { kid?: string }).kid === kid && k.kty === "RSA");
  if (!key) return null;
  const imported = await crypto.subtle.importKey(
    "jwk",
    { kty: key.kty, n: key.n, e: key.e, alg: "RS256", ext: true },
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    false,
    ["verify"],
  );
  return crypto.subtle.verify("RSASSA-PKCS1-v1_5", imported, Uint8Array.from(signature), utf8(signed));
}

/** Verifies an Access JWT; null for anything forged, expired, not yet valid, or for another app. */
export async function verifyAccessJwt(
  token: string,
  config: AccessConfig,
  now = Date.now(),
): Promise<AccessIdentity | null> {
  const parts = token.split(".");
  if (parts.length !== 3 || token.length > 16_384) return null;
  const [head, body, sig] = parts as [string, string, string];
  const header = decodeJson(head);
  const payload = decodeJson(body);
  if (!header || !payload || header.alg !== "RS256") return null;
  let signature: Uint8Array;
  try {
    signature = fromBase64Url(sig);
  } catch {
    return null;
  }
  let valid = await verifySignature(
    await keySource(config.issuer, false),
    header.kid,
    `${head}.${body}`,
    signature,
  );
  if (valid === null) {
    valid = await verifySignature(
      await keySource(config.issuer, true),
      header.kid,
      `${head}.${body}`,
      signature,
    );
  }
  if (!valid) return null;
  const seconds = now / 1000;
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (!aud.includes(config.audience)) return null;
  if (payload.iss !== config.issuer) return null;
  if (typeof payload.exp !== "number" || payload.exp + CLOCK_SKEW_S < seconds) return null;
  if (typeof payload.nbf === "number" && payload.nbf - CLOCK_SKEW_S > seconds) return null;
  if (typeof payload.email !== "string" || !payload.email.includes("@")) return null;
  const custom = payload.custom as { groups?: unknown } | undefined;
  const rawGroups = Array.isArray(payload.groups)
    ? payload.groups
    : Array.isArray(custom?.groups)
      ? custom.groups
      : [];
  const groups = rawGroups.filter((g): g is string => typeof g === "string");
  return { email: payload.email.toLowerCase(), groups, role: roleFor(payload.email, groups, config) };
}

/** An email or one of the groups listed in ACCESS_ADMINS makes an admin; ACCESS_VIEWERS a viewer ("*": anyone). */
export function roleFor(email: string, groups: string[], config: AccessConfig): Role | null {
  const names = [email.toLowerCase(), ...groups.map((g) => g.toLowerCase())];
  if (names.some((n) => config.admins.has(n))) return "admin";
  if (config.viewers.has("*") || names.some((n) => config.viewers.has(n))) return "viewer";
  return null;
}
