// The alert webhook's wire format, shared by the master (sender) and anyone verifying it.
// Body: JSON AlertPayload. Signature: HMAC-SHA256 over `${timestamp}.${body}` with the shared
// secret, hex, in ALERT_SIGNATURE_HEADER as `sha256=<hex>`; the timestamp (epoch seconds) rides in
// ALERT_TIMESTAMP_HEADER so a receiver can refuse replays older than a few minutes.

import { z } from "zod";
import { utf8 } from "./encoding";

export const ALERT_SIGNATURE_HEADER = "X-Fleetgate-Signature";
export const ALERT_TIMESTAMP_HEADER = "X-Fleetgate-Timestamp";

export const ALERT_KINDS = [
  "node.offline",
  "policy.rejected",
  "records.dropped",
  "spool.backlog",
  "rollout.halted",
  "logs.tally_refused",
  "test",
] as const;
export const AlertKind = z.enum(ALERT_KINDS);
export type AlertKind = z.infer<typeof AlertKind>;

export const AlertPayload = z.object({
  id: z.string(),
  kind: AlertKind,
  subject: z.string(),
  summary: z.string(),
  details: z.record(z.string(), z.unknown()),
  firedAt: z.string(),
  dashboardUrl: z.string().optional(),
});
export type AlertPayload = z.infer<typeof AlertPayload>;

async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", utf8(secret), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8(message)));
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The signature header value for `body` sent at `timestamp` (epoch seconds). */
export async function signAlert(secret: string, timestamp: number, body: string): Promise<string> {
  return `sha256=${await hmacHex(secret, `${timestamp}.${body}`)}`;
}

/** True when `signature` is the one `secret` gives for this timestamp and body. */
export async function verifyAlert(
  secret: string,
  timestamp: number,
  body: string,
  signature: string,
): Promise<boolean> {
  const expected = await signAlert(secret, timestamp, body);
  if (expected.length !== signature.length) return false;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ signature.charCodeAt(i);
  return diff === 0;
}
