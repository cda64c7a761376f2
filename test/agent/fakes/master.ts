// The one fake master of the agent tests. It speaks the agent protocol (enroll, policy with ETag
// semantics, status, logs with chunk-id dedupe like the real ingestion) and is reached either
// in-process through `fetch` (the sync loop on a fake clock) or over real loopback HTTP after
// `listen()` (the CLI, the spool uploader, `run` under Bun). `route` answers first when a test
// wants a master that misbehaves; queued replies override the next poll (`queue`) or upload (`script`).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { agentUrl } from "../../../agent/master/client";
import type { FetchLike } from "../../../agent/ports";
import {
  bundleTag,
  type LogRecord,
  type PolicyBundle,
  type StatusReport,
  tagNames,
} from "../../../protocol/wire";
import type { FakeClock } from "./clock";

export type Reply = { status: number; body?: unknown; headers?: Record<string, string> };
export interface SeenRequest {
  method: string;
  /** Path and query, as the master sees it. */
  url: string;
  body: string;
  headers: Record<string, string>;
}
export type Route = (req: SeenRequest, body: string) => Reply | undefined;
type PollReply = Response | Error | ((url: string, init?: RequestInit) => Response | Promise<Response>);

export interface Received {
  id: string;
  headers: Record<string, string>;
  records: LogRecord[];
  /** The tally's JSON, when the upload carried one (X-Fleetgate-Tally-Length). */
  tally: unknown;
  at: number;
}

export const MASTER = "https://master.test";

export const enrollAnswer = (publicKey = "pk-one"): Reply => ({
  status: 201,
  body: {
    nodeId: "node_test1",
    nodeToken: "fgn_secret-token",
    masterKey: { kid: `kid-${publicKey}`, alg: "Ed25519", publicKey },
    pollWaitSeconds: 20,
  },
});

export function errorBody(code: string, message = code.toLowerCase()) {
  return { error: { code, message, requestId: "req_test" } };
}

export function errorReply(status: number, code: string, headers: Record<string, string> = {}): Response {
  return Response.json(errorBody(code), { status, headers });
}

export class FakeMaster {
  /** Every request, in order. */
  readonly requests: SeenRequest[] = [];
  /** Answers before the protocol routes; return undefined to fall through. */
  route: Route | null = null;
  enrollReply: Reply = enrollAnswer();

  /** The bundle GET /policy serves (304 when the poll names its hash). */
  current: PolicyBundle | null = null;
  readonly polls: { url: string; etag: string | null; userAgent: string | null }[] = [];
  /** Replies for the next polls, before `current`. */
  readonly queue: PollReply[] = [];
  /** How long a "nothing new" poll is held, like the real long poll (advances a manual clock). */
  holdMs = 0;
  /** Name bundles as the master does now (`<generation>.<version>.<hash>`); false: by hash, as before. */
  tags = false;

  readonly statuses: StatusReport[] = [];
  readonly statusTimes: number[] = [];

  readonly received: Received[] = [];
  /** Chunk ids the master has stored, with their record request ids. */
  readonly stored = new Map<string, string[]>();
  /** Upload answers used, in order, before the default (store and answer 200); a function may pass with null. */
  readonly script: (Reply | ((r: Received) => Reply | null))[] = [];
  /** Refuse any chunk with more records than this with 413. */
  maxRecords = Number.POSITIVE_INFINITY;
  /** Answer uploads with X-Fleetgate-Tally, as a master that reads tallies does. */
  takesTally = false;
  /** Asked about every upload before `script`; a reply overrides the default answer. */
  onUpload: ((r: Received) => Reply | null) | null = null;
  /** Hold every upload answer this long, to see how many uploads overlap. */
  delayMs = 0;
  active = 0;
  peakActive = 0;

  /** Called after every in-process request; tests stop the loop from here. */
  onRequest: () => void = () => {};
  url = MASTER;
  private server: http.Server | null = null;

  constructor(private readonly o: { log?: string[]; clock?: FakeClock } = {}) {}

  readonly fetch: FetchLike = async (url, init) => {
    try {
      const next = url.includes("/policy") ? this.queue.shift() : undefined;
      if (next instanceof Error) throw next;
      if (next instanceof Response) return next;
      if (next) return await next(url, init);
      const request = new Request(url, init);
      const body = new Uint8Array(await request.arrayBuffer());
      return await this.answer(request.method, url, headerRecord(request.headers), body);
    } finally {
      this.onRequest();
    }
  };

  /** Serves the same master on a free loopback port; `url` is then its address. */
  async listen(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on("data", (part: Buffer) => parts.push(part));
      req.on("end", async () => {
        const headers = Object.fromEntries(
          Object.entries(req.headers).map(([name, value]) => [name, String(value)]),
        );
        const answer = await this.answer(
          req.method ?? "GET",
          `${this.url}${req.url}`,
          headers,
          Buffer.concat(parts),
        );
        res.writeHead(answer.status, headerRecord(answer.headers));
        res.end(Buffer.from(await answer.arrayBuffer()));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server!.close(resolve));
    this.server = null;
  }

  /** Every record request id the master has stored, over all chunks. */
  storedRequestIds(): string[] {
    return [...this.stored.values()].flat();
  }

  private now(): number {
    return this.o.clock?.now() ?? Date.now();
  }

  private async answer(method: string, url: string, headers: Record<string, string>, body: Uint8Array) {
    const path = url.slice(new URL(url).origin.length);
    const isLogs = url.startsWith(agentUrl(this.url, "/logs"));
    const seen = { method, url: path, body: isLogs ? "" : Buffer.from(body).toString("utf8"), headers };
    this.requests.push(seen);
    const routed = this.route?.(seen, seen.body);
    if (routed) return toResponse(routed);
    if (path.includes("/enroll")) return toResponse(this.enrollReply);
    if (path.includes("/policy")) return this.poll(url, headers);
    if (path.endsWith("/status")) {
      const report = JSON.parse(seen.body) as StatusReport;
      this.statuses.push(report);
      this.statusTimes.push(this.now());
      this.o.log?.push(`status ${report.state} v${report.appliedVersion}`);
      return new Response(null, { status: 204 });
    }
    if (isLogs) return this.upload(headers, body);
    return new Response("not found", { status: 404 });
  }

  private poll(url: string, headers: Record<string, string>): Response {
    const etag = headers["if-none-match"]?.replace(/"/g, "") ?? null;
    this.polls.push({ url, etag, userAgent: headers["user-agent"] ?? null });
    if (!this.current || (this.tags ? tagNames(etag, this.current) : this.current.hash === etag)) {
      if (this.o.clock) this.o.clock.t += this.holdMs;
      return new Response(null, { status: 304 });
    }
    const name = this.tags ? bundleTag(this.current) : this.current.hash;
    return Response.json(this.current, { headers: { etag: `"${name}"` } });
  }

  private async upload(headers: Record<string, string>, body: Uint8Array): Promise<Response> {
    this.active++;
    this.peakActive = Math.max(this.peakActive, this.active);
    try {
      const reply = this.ingest(headers, body);
      if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
      return toResponse(reply);
    } finally {
      this.active--;
    }
  }

  private ingest(headers: Record<string, string>, body: Uint8Array): Reply {
    const id = String(headers["x-fleetgate-chunk"]);
    const tallyBytes = Number(headers["x-fleetgate-tally-length"] ?? 0);
    const chunk = body.subarray(tallyBytes);
    const lines = gunzipSync(chunk).toString("utf8").split("\n").filter(Boolean);
    const received: Received = {
      id,
      headers,
      records: lines.map((line) => JSON.parse(line) as LogRecord),
      tally: tallyBytes ? JSON.parse(gunzipSync(body.subarray(0, tallyBytes)).toString("utf8")) : null,
      at: Date.now(),
    };
    this.received.push(received);
    const hooked = this.onUpload?.(received);
    if (hooked) return hooked;
    while (this.script.length > 0) {
      const next = this.script.shift()!;
      const reply = typeof next === "function" ? next(received) : next;
      if (reply) return reply;
    }
    if (received.records.length > this.maxRecords) {
      return { status: 413, body: errorBody("CHUNK_TOO_LARGE", "too many records") };
    }
    const answerHeaders = this.takesTally ? { "x-fleetgate-tally": "1" } : undefined;
    if (this.stored.has(id))
      return { status: 200, body: { accepted: 0, duplicate: true }, headers: answerHeaders };
    this.stored.set(
      id,
      received.records.map((r) => r.requestId),
    );
    return {
      status: 200,
      body: { accepted: received.records.length, duplicate: false },
      headers: answerHeaders,
    };
  }
}

function toResponse(reply: Reply): Response {
  const body =
    reply.body === undefined || [204, 304].includes(reply.status) ? null : JSON.stringify(reply.body);
  return new Response(body, {
    status: reply.status,
    headers: { "content-type": "application/json", ...reply.headers },
  });
}

function headerRecord(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    out[name] = value;
  });
  return out;
}
