import { ErrorBody, LogChunkAnswer } from "../../protocol/wire";
import { parseRetryAfter } from "../sync/backoff";
import { agentUrl } from "../sync/master-client";
import type { FetchLike } from "../sync/types";

/** What one `POST /logs` came to, as far as the spool is concerned. */
export type UploadOutcome =
  | { kind: "acked"; accepted: number; duplicate: boolean }
  | { kind: "too-large" }
  | { kind: "refused"; status: number; code: string; message: string }
  | { kind: "throttled"; status: number; retryAfterMs: number | null }
  | { kind: "unauthorized"; code: string; message: string }
  | { kind: "failed"; status: number; message: string };

export interface UploadCall {
  fetch: FetchLike;
  masterUrl: string;
  nodeToken: string;
  agentVersion: string;
  chunkId: string;
  body: Uint8Array;
  signal: AbortSignal;
  now: () => number;
}

export async function uploadChunk(call: UploadCall): Promise<UploadOutcome> {
  let response: Response;
  try {
    response = await call.fetch(agentUrl(call.masterUrl, "/logs"), {
      method: "POST",
      headers: {
        authorization: `Bearer ${call.nodeToken}`,
        "content-type": "application/x-ndjson",
        "content-encoding": "gzip",
        "x-fleetgate-chunk": call.chunkId,
        "user-agent": `fleetgate-agent/${call.agentVersion}`,
      },
      body: call.body as Uint8Array<ArrayBuffer>,
      signal: call.signal,
    });
  } catch (error) {
    return { kind: "failed", status: 0, message: (error as Error)?.message ?? String(error) };
  }
  const text = await response.text().catch(() => "");
  const json = parseJson(text);
  const status = response.status;
  if (status === 200 || status === 201) {
    const answer = LogChunkAnswer.safeParse(json);
    // Unreadable praise is not an ack; the retry is safe because the master counts a chunk id once.
    if (!answer.success)
      return { kind: "failed", status, message: "master answered 200 without {accepted, duplicate}" };
    return { kind: "acked", accepted: answer.data.accepted, duplicate: answer.data.duplicate };
  }
  const error = ErrorBody.safeParse(json);
  const code = error.success ? error.data.error.code : `HTTP_${status}`;
  const message = error.success ? error.data.error.message : `master answered HTTP ${status}`;
  if (status === 413) return { kind: "too-large" };
  if (status === 429 || status === 503) {
    return {
      kind: "throttled",
      status,
      retryAfterMs: parseRetryAfter(response.headers.get("retry-after"), call.now()),
    };
  }
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

function parseJson(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : null;
  } catch {
    return null;
  }
}
