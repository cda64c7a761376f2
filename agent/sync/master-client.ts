import {
  EnrollRequest,
  EnrollResponse,
  ErrorBody,
  PolicyBundle,
  PROTOCOL_PREFIX,
  type StatusReport,
} from "../../protocol/wire";
import { AGENT_VERSION } from "../version";
import { parseRetryAfter } from "./backoff";
import type { FetchLike } from "./types";

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
  | { ok: true; kind: "bundle"; bundle: PolicyBundle }
  // An unreadable bundle is still an answer to NACK, not a transport failure to retry.
  | { ok: true; kind: "malformed"; reason: string }
  | { ok: true; kind: "not-modified" }
  | MasterFailure;

export interface MasterCall {
  fetch: FetchLike;
  masterUrl: string;
  signal?: AbortSignal;
  now?: () => number;
}

export function agentUrl(masterUrl: string, path: string): string {
  return `${masterUrl.replace(/\/+$/, "")}${PROTOCOL_PREFIX}${path}`;
}

export async function pollPolicy(
  call: MasterCall & { nodeToken: string; etag: string | null; waitSeconds: number },
): Promise<PollResult> {
  const headers: Record<string, string> = { authorization: `Bearer ${call.nodeToken}` };
  if (call.etag) headers["if-none-match"] = `"${call.etag}"`;
  const answer = await send(call, `/policy?wait=${call.waitSeconds}`, { method: "GET", headers });
  if (!answer.ok) return answer;
  const { response } = answer;
  // 204 is how a master with nothing published yet may answer; it means the same as 304 here.
  if (response.status === 304 || response.status === 204) return { ok: true, kind: "not-modified" };
  if (response.status !== 200) return failureFrom(response, await readBody(response), call);
  const raw = await readBody(response);
  const parsed = PolicyBundle.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: true,
      kind: "malformed",
      reason: `bundle is malformed at ${issue?.path.join(".") || "(root)"}`,
    };
  }
  return { ok: true, kind: "bundle", bundle: parsed.data };
}

export async function postStatus(
  call: MasterCall & { nodeToken: string; report: StatusReport },
): Promise<{ ok: true } | MasterFailure> {
  const answer = await send(call, "/status", {
    method: "POST",
    headers: { authorization: `Bearer ${call.nodeToken}`, "content-type": "application/json" },
    body: JSON.stringify(call.report),
  });
  if (!answer.ok) return answer;
  if (answer.response.status === 204 || answer.response.status === 200) {
    await answer.response.body?.cancel();
    return { ok: true };
  }
  return failureFrom(answer.response, await readBody(answer.response), call);
}

/** `nodeToken`: the current token when re-enrolling this instance (the master's proof of identity). */
export async function enrollNode(
  call: MasterCall & { request: EnrollRequest; nodeToken?: string | null },
): Promise<{ ok: true; enrollment: EnrollResponse } | MasterFailure> {
  const body = EnrollRequest.parse(call.request);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (call.nodeToken) headers.authorization = `Bearer ${call.nodeToken}`;
  const answer = await send(call, "/enroll", {
    method: "POST",
    headers,
    body: JSON.stringify(body),
  });
  if (!answer.ok) return answer;
  const data = await readBody(answer.response);
  if (answer.response.status !== 201 && answer.response.status !== 200) {
    return failureFrom(answer.response, data, call);
  }
  const parsed = EnrollResponse.safeParse(data);
  if (!parsed.success) {
    return {
      ok: false,
      status: answer.response.status,
      code: "BAD_ANSWER",
      message: "master sent an enrollment answer this agent cannot read",
      retryAfterMs: null,
    };
  }
  return { ok: true, enrollment: parsed.data };
}

async function send(
  call: MasterCall,
  path: string,
  init: RequestInit,
): Promise<{ ok: true; response: Response } | MasterFailure> {
  try {
    // The master records the agent version from every poll (a heartbeat) through this header.
    const headers = {
      ...(init.headers as Record<string, string>),
      "user-agent": `fleetgate-agent/${AGENT_VERSION}`,
    };
    const response = await call.fetch(agentUrl(call.masterUrl, path), {
      ...init,
      headers,
      signal: call.signal,
    });
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

async function readBody(response: Response): Promise<unknown> {
  try {
    const text = await response.text();
    return text ? (JSON.parse(text) as unknown) : null;
  } catch {
    return null;
  }
}

function failureFrom(response: Response, body: unknown, call: MasterCall): MasterFailure {
  const parsed = ErrorBody.safeParse(body);
  const code = parsed.success ? parsed.data.error.code : `HTTP_${response.status}`;
  const message = parsed.success ? parsed.data.error.message : `master answered HTTP ${response.status}`;
  const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), call.now?.() ?? Date.now());
  return { ok: false, status: response.status, code, message, retryAfterMs };
}

function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error.name === "AbortError" || error.name === "TimeoutError")
    return "request to master timed out or was cancelled";
  const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message;
  return detail ? `${error.message} (${detail})` : error.message;
}
