import type { UploadResult } from "../master/client";

/** What one `POST /logs` came to, as far as the spool is concerned. */
export type UploadOutcome =
  | { kind: "acked"; accepted: number; duplicate: boolean; takesTally: boolean; tallyRefused?: string }
  | { kind: "too-large" }
  | { kind: "refused"; status: number; code: string; message: string }
  | { kind: "throttled"; status: number; retryAfterMs: number | null }
  | { kind: "unauthorized"; code: string; message: string }
  | { kind: "failed"; status: number; message: string };

/** The spool's reading of the master's answer (docs/spool.md, Upload). */
export function uploadOutcome(result: UploadResult): UploadOutcome {
  if (result.ok) {
    const { accepted, duplicate, takesTally, tallyRefused } = result;
    return { kind: "acked", accepted, duplicate, takesTally, ...(tallyRefused ? { tallyRefused } : {}) };
  }
  const { status, code, message } = result;
  // No answer, or a 2xx this agent cannot read: the retry is safe because the master counts a chunk id once.
  if (status === 0 || status < 300) return { kind: "failed", status, message };
  if (status === 413) return { kind: "too-large" };
  if (status === 429 || status === 503)
    return { kind: "throttled", status, retryAfterMs: result.retryAfterMs };
  // Revoked token or an allow-list refusal (IP_NOT_ALLOWED): nothing wrong with the chunk, so keep
  // it and retry slowly instead of quarantining it — a deliberate exception to "other 4xx →
  // quarantine" (docs/spool.md, Upload). Only these two codes: any other 4xx is about the chunk.
  if (status === 401 || status === 403) return { kind: "unauthorized", code, message };
  // 408 and 425 are the master saying "not now", not "never".
  if (status >= 400 && status < 500 && status !== 408 && status !== 425) {
    return { kind: "refused", status, code, message };
  }
  return { kind: "failed", status, message: `${code}: ${message}` };
}
