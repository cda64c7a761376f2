// The agent's one way to talk to the master: URL building, the node token, the User-Agent, and how
// an answer becomes a result (JSON bodies, the shared error body, Retry-After, network failures).
// Sync (poll, status), uploads (logs) and enrollment all go through it; what a result means for
// each caller (backoff, quarantine, NACK) stays with the caller.
import { CHUNK_ID_HEADER } from "../../protocol/chunk-id";
import {
  TALLY_ACCEPTED_HEADER,
  TALLY_CONTENT_TYPE,
  TALLY_LENGTH_HEADER,
  TALLY_VERSION,
} from "../../protocol/chunk-tally";
import {
  agentUserAgent,
  EnrollRequest,
  EnrollResponse,
  ErrorBody,
  LogChunkAnswer,
  PROTOCOL_PREFIX,
  type StatusReport,
} from "../../protocol/wire";
import type { FetchLike } from "../ports";
import { parseRetryAfter } from "../sync/backoff";
import { AGENT_VERSION } from "../version";

/** A master answer the agent understood, or why it could not get one. */
export type MasterFailure = {
  ok: false;
  /** 0 when the request never got an HTTP answer (DNS, refused, timeout, TLS). */
  status: number;
  code: string;
  message: string;
  retryAfterMs: number | null;
};

export type PollResult =
  // The bytes as downloaded: parsed, verified and compiled by the sync loop's prepare step (in a
  // worker for `run`), so a large bundle never costs the proxy's event loop a JSON.parse.
  | { ok: true; kind: "bundle"; bytes: Uint8Array; etag: string | null }
  | { ok: true; kind: "not-modified" }
  | MasterFailure;

export type UploadResult =
  | {
      ok: true;
      accepted: number;
      duplicate: boolean;
      /** The master reads tallies (it sent X-Fleetgate-Tally): later uploads may carry one. */
      takesTally: boolean;
      /** Why the master did not use the tally this upload carried. */
      tallyRefused?: string;
    }
  | MasterFailure;

export interface MasterClientOptions {
  fetch: FetchLike;
  masterUrl: string;
  /** The node's bearer token; null before enrollment (and for a first enroll). */
  nodeToken: string | null;
  /** Sent in the User-Agent (protocol's agentUserAgent): the master records it from every poll (a heartbeat). */
  agentVersion?: string;
  /** Epoch ms for Retry-After dates; default Date.now. */
  now?: () => number;
}

export function agentUrl(masterUrl: string, path: string): string {
  return `${masterUrl.replace(/\/+$/, "")}${PROTOCOL_PREFIX}${path}`;
}

/** The routes of the agent protocol this client calls, below PROTOCOL_PREFIX (see the route-walk test). */
export const MASTER_ROUTES = [
  { method: "POST", path: "/enroll" },
  { method: "GET", path: "/policy" },
  { method: "POST", path: "/status" },
  { method: "POST", path: "/logs" },
] as const;

export class MasterClient {
  readonly masterUrl: string;
  readonly agentVersion: string;
  private readonly userAgent: string;
  private readonly now: () => number;

  constructor(private readonly o: MasterClientOptions) {
    this.masterUrl = o.masterUrl;
    this.agentVersion = o.agentVersion ?? AGENT_VERSION;
    this.userAgent = agentUserAgent(this.agentVersion);
    this.now = o.now ?? Date.now;
  }

  async pollPolicy(call: {
    etag: string | null;
    waitSeconds: number;
    signal?: AbortSignal;
  }): Promise<PollResult> {
    const headers: Record<string, string> = {};
    if (call.etag) headers["if-none-match"] = `"${call.etag}"`;
    const answer = await this.send(
      `/policy?wait=${call.waitSeconds}`,
      { method: "GET", headers },
      call.signal,
    );
    if (!answer.ok) return answer;
    const { response } = answer;
    // 204 is how a master with nothing published yet may answer; it means the same as 304 here.
    if (response.status === 304 || response.status === 204) return { ok: true, kind: "not-modified" };
    if (response.status !== 200) return this.failure(response, await readJson(response));
    const raw = await readBundleBody(response);
    if (!raw.ok) return raw;
    return { ok: true, kind: "bundle", bytes: raw.bytes, etag: parseEtag(response.headers.get("etag")) };
  }

  async postStatus(call: {
    report: StatusReport;
    signal?: AbortSignal;
  }): Promise<{ ok: true } | MasterFailure> {
    const answer = await this.send(
      "/status",
      { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(call.report) },
      call.signal,
    );
    if (!answer.ok) return answer;
    if (answer.response.status === 204 || answer.response.status === 200) {
      await answer.response.body?.cancel();
      return { ok: true };
    }
    return this.failure(answer.response, await readJson(answer.response));
  }

  /** With a node token set, the master takes it as proof of identity for re-enrolling this instance. */
  async enroll(call: {
    request: EnrollRequest;
    signal?: AbortSignal;
  }): Promise<{ ok: true; enrollment: EnrollResponse } | MasterFailure> {
    const body = EnrollRequest.parse(call.request);
    const answer = await this.send(
      "/enroll",
      { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) },
      call.signal,
    );
    if (!answer.ok) return answer;
    const data = await readJson(answer.response);
    const status = answer.response.status;
    if (status !== 201 && status !== 200) return this.failure(answer.response, data);
    const parsed = EnrollResponse.safeParse(data);
    if (!parsed.success) return badAnswer(status, "master sent an enrollment answer this agent cannot read");
    return { ok: true, enrollment: parsed.data };
  }

  /**
   * One gzip NDJSON chunk, with its gzip tally in front when `tally` is given (docs/reports.md,
   * Tallied chunks); the master counts a chunk id once, so a retry is always safe.
   */
  async uploadChunk(call: {
    chunkId: string;
    body: Uint8Array;
    tally?: Uint8Array | null;
    signal?: AbortSignal;
  }): Promise<UploadResult> {
    const tally = call.tally ?? null;
    const headers: Record<string, string> = tally
      ? { "content-type": TALLY_CONTENT_TYPE, [TALLY_LENGTH_HEADER]: String(tally.byteLength) }
      : { "content-type": "application/x-ndjson", "content-encoding": "gzip" };
    headers[CHUNK_ID_HEADER] = call.chunkId;
    const body = tally ? concatBytes(tally, call.body) : call.body;
    const answer = await this.send(
      "/logs",
      { method: "POST", headers, body: body as Uint8Array<ArrayBuffer> },
      call.signal,
    );
    if (!answer.ok) return answer;
    const data = await readJson(answer.response);
    const status = answer.response.status;
    if (status !== 200 && status !== 201) return this.failure(answer.response, data);
    const parsed = LogChunkAnswer.safeParse(data);
    // Unreadable praise is not an ack.
    if (!parsed.success) return badAnswer(status, "master answered 200 without {accepted, duplicate}");
    return {
      ok: true,
      accepted: parsed.data.accepted,
      duplicate: parsed.data.duplicate,
      takesTally: answer.response.headers.get(TALLY_ACCEPTED_HEADER) === String(TALLY_VERSION),
      ...(parsed.data.tallyRefused ? { tallyRefused: parsed.data.tallyRefused } : {}),
    };
  }

  private async send(
    path: string,
    init: { method: string; headers: Record<string, string>; body?: BodyInit },
    signal: AbortSignal | undefined,
  ): Promise<{ ok: true; response: Response } | MasterFailure> {
    const headers: Record<string, string> = { ...init.headers, "user-agent": this.userAgent };
    if (this.o.nodeToken) headers.authorization = `Bearer ${this.o.nodeToken}`;
    try {
      const response = await this.o.fetch(agentUrl(this.masterUrl, path), { ...init, headers, signal });
      return { ok: true, response };
    } catch (error) {
      return {
        ok: false,
        status: 0,
        code: "UNREACHABLE",
        message: describeNetworkError(error),
        retryAfterMs: null,
      };
    }
  }

  private failure(response: Response, body: unknown): MasterFailure {
    const parsed = ErrorBody.safeParse(body);
    const code = parsed.success ? parsed.data.error.code : `HTTP_${response.status}`;
    const message = parsed.success ? parsed.data.error.message : `master answered HTTP ${response.status}`;
    const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), this.now());
    return { ok: false, status: response.status, code, message, retryAfterMs };
  }
}

function badAnswer(status: number, message: string): MasterFailure {
  return { ok: false, status, code: "BAD_ANSWER", message, retryAfterMs: null };
}

/**
 * A bundle body that did not arrive whole (the download timed out, the connection dropped, fewer
 * bytes than Content-Length) is a transport failure to retry, never a bundle to NACK; JSON cut
 * short is caught the same way when the bundle is parsed (sync/prepare.ts).
 */
async function readBundleBody(response: Response): Promise<{ ok: true; bytes: Uint8Array } | MasterFailure> {
  const incomplete = (message: string): MasterFailure => ({
    ok: false,
    status: 0,
    code: "DOWNLOAD_INCOMPLETE",
    message,
    retryAfterMs: null,
  });
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    return incomplete(`bundle download interrupted: ${describeNetworkError(error)}`);
  }
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  // Only meaningful without a content coding (fetch inflates gzip/br and keeps the wire length).
  if (!response.headers.get("content-encoding") && Number.isFinite(declared) && bytes.length < declared) {
    return incomplete(`bundle download truncated: ${bytes.length} of ${declared} bytes`);
  }
  return { ok: true, bytes };
}

function parseEtag(header: string | null): string | null {
  const match = header ? /^(?:W\/)?"([^"]{1,200})"$/.exec(header.trim()) : null;
  return match?.[1] ?? null;
}

async function readJson(response: Response): Promise<unknown> {
  try {
    const text = await response.text();
    return text ? (JSON.parse(text) as unknown) : null;
  } catch {
    return null;
  }
}

function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === "AbortError" || error.name === "TimeoutError")
    return "request to master timed out or was cancelled";
  const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message;
  return detail ? `${error.message} (${detail})` : error.message;
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}
