import { env } from "cloudflare:test";
import type { LogRecord } from "../../../protocol/wire";
import { flushAllCoalescers } from "../../../worker/services/ingest-accept";
import { call } from "./api";

export function record(overrides: Partial<LogRecord> = {}): LogRecord {
  return {
    ts: "2026-11-20T10:15:30.000Z",
    client: "10.1.2.3",
    method: "GET",
    scheme: "http",
    host: "www.example.com",
    port: 80,
    path: "/",
    status: 200,
    action: "allow",
    bytesIn: 100,
    bytesOut: 1000,
    durationMs: 12,
    requestId: crypto.randomUUID(),
    ...overrides,
  };
}

export async function gzip(text: string): Promise<ArrayBuffer> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(stream).arrayBuffer();
}

/** Writes every chunk the coalescers buffer to D1 now (they otherwise flush about once a second). */
export const flushIngest = () => flushAllCoalescers(env);

/** Uploads a chunk and, once it is answered, flushes the coalescers so D1 counts it. */
export async function uploadChunk(
  token: string,
  chunk: string,
  records: unknown[] | string,
  headers: Record<string, string> = {},
) {
  const res = await postChunk(token, chunk, records, headers);
  await flushIngest();
  return res;
}

/** Uploads a chunk without flushing: its records may still sit in a coalescer. */
export async function postChunk(
  token: string,
  chunk: string,
  records: unknown[] | string,
  headers: Record<string, string> = {},
) {
  const text =
    typeof records === "string" ? records : `${records.map((r) => JSON.stringify(r)).join("\n")}\n`;
  return call("/api/agent/v1/logs", {
    method: "POST",
    token,
    rawBody: await gzip(text),
    headers: {
      "Content-Type": "application/x-ndjson",
      "Content-Encoding": "gzip",
      "X-Fleetgate-Chunk": chunk,
      ...headers,
    },
  });
}
