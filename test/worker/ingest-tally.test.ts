import { env } from "cloudflare:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { tallyChunk } from "../../agent/spool/tally";
import type { LogChunkAnswer, LogRecord } from "../../protocol/wire";
import { getDb } from "../../worker/db/client";
import { acceptChunk } from "../../worker/services/ingest-accept";
import { call, expectError, json } from "./helpers/api";
import { enrollNode } from "./helpers/factories";
import { flushIngest, record, uploadChunk } from "./helpers/logs";

// Tallied uploads (docs/reports.md, Tallied chunks): the node sends its chunk folded beside the
// raw gzip; the master counts the tally after checking it, archives the gzip as received, and a
// tally that breaks a rule or differs from a verified sample's records is not used.

const DAY = Date.parse("2026-11-20T00:00:00.000Z");
const ndjson = (rs: readonly unknown[]) => `${rs.map((r) => JSON.stringify(r)).join("\n")}\n`;

function mixed(prefix: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (let i = 0; i < 60; i++) {
    const blocked = i % 7 === 0;
    out.push(
      record({
        ts: new Date(DAY + 10 * 3_600_000 + i * 97_000).toISOString(), // 10:00–11:36, two hours
        host: ["Www.Example.com", "api.example.com", `h${i % 5}.example.org`][i % 3]!,
        client: `10.0.0.${i % 4}`,
        action: blocked ? "block" : i % 11 === 0 ? "error" : "allow",
        status: blocked ? 403 : 200,
        ...(i % 2 ? { user: `u${i % 3}` } : {}),
        ...(blocked ? { rule: "no-x" } : {}),
        bytesIn: i * 3,
        bytesOut: i * 101,
        requestId: `${prefix}-${i}`,
      }),
    );
  }
  return out;
}

function tallied(tally: Uint8Array, chunk: Uint8Array): Uint8Array {
  const body = new Uint8Array(tally.byteLength + chunk.byteLength);
  body.set(tally, 0);
  body.set(chunk, tally.byteLength);
  return body;
}

async function postTallied(token: string, chunkId: string, tally: Uint8Array, chunk: Uint8Array) {
  return call("/api/agent/v1/logs", {
    method: "POST",
    token,
    rawBody: tallied(tally, chunk),
    headers: {
      "Content-Type": "application/x-fleetgate-tallied-chunk",
      "X-Fleetgate-Chunk": chunkId,
      "X-Fleetgate-Tally-Length": String(tally.byteLength),
    },
  });
}

/** Every rollup row of a node, as comparable text (kind, bucket, key, counters). */
async function rowsOf(nodeId: string): Promise<string[]> {
  const { results } = await env.DB.prepare(
    `SELECT kind, bucket, key, requests, blocked, auth, errors, bytes_in, bytes_out FROM rollups
     WHERE node_id = ? ORDER BY kind, bucket, key`,
  )
    .bind(nodeId)
    .all();
  return results.map((r) => Object.values(r).join("|"));
}

const editTally = (
  tally: Uint8Array,
  edit: (t: { hours: [number, number, string[], number[]][] }) => void,
) => {
  const value = JSON.parse(new TextDecoder().decode(gunzipSync(tally)));
  edit(value);
  return new Uint8Array(gzipSync(JSON.stringify(value)));
};

/** acceptChunk with its own vars (how often a tally is verified against its records). */
async function acceptWith(
  vars: Record<string, string>,
  nodeId: string,
  chunkId: string,
  body: Uint8Array,
  tallyLength: number,
) {
  return acceptChunk({
    db: getDb(env.DB),
    env: { ...env, ...vars } as Env,
    node: { id: nodeId },
    input: {
      chunkId,
      encoding: undefined,
      length: String(body.byteLength),
      tallyLength: String(tallyLength),
      body: new Blob([body]).stream(),
    },
  });
}

describe("tallied log chunks", () => {
  it("count exactly as the same records sent plain, archive the raw records for search, and say the master reads tallies", async () => {
    const plain = await enrollNode();
    const withTally = await enrollNode();
    const records = mixed("t1");
    const chunk = new Uint8Array(gzipSync(ndjson(records)));
    const tally = tallyChunk(chunk)!;
    await json(await uploadChunk(plain.nodeToken, "ep.1", records), 200);
    const res = await postTallied(withTally.nodeToken, "ep.1", tally, chunk);
    expect(res.headers.get("X-Fleetgate-Tally")).toBe("1");
    expect(await json<LogChunkAnswer>(res, 200)).toEqual({
      accepted: 60,
      duplicate: false,
      counted: "tally",
    });
    await flushIngest();
    const expected = await rowsOf(plain.nodeId);
    expect(expected.length).toBeGreaterThan(20);
    expect(await rowsOf(withTally.nodeId)).toEqual(expected);

    const page = await json<{ rows: { requestId: string }[] }>(
      await call(
        `/api/v1/requests?from=${DAY + 10 * 3_600_000}&to=${DAY + 12 * 3_600_000}&node=${withTally.nodeId}&limit=100`,
      ),
      200,
    );
    expect(page.rows.map((r) => r.requestId).sort()).toEqual(records.map((r) => r.requestId).sort());

    // The same chunk again is a duplicate, tallied or not.
    expect(await json(await postTallied(withTally.nodeToken, "ep.1", tally, chunk), 200)).toMatchObject({
      accepted: 0,
      duplicate: true,
    });
    await flushIngest();
    expect(await rowsOf(withTally.nodeId)).toEqual(expected);
  });

  it("a tally that breaks a rule is not used: the chunk is counted from its records and the answer says why", async () => {
    const plain = await enrollNode();
    const node = await enrollNode();
    const records = mixed("t2");
    const chunk = new Uint8Array(gzipSync(ndjson(records)));
    const broken = editTally(tallyChunk(chunk)!, (t) => {
      const hosts = t.hours.find((g) => g[0] === 1)!;
      hosts[3][0]! += 1000; // one host counts 1,000 more requests than the hour holds
    });
    await json(await uploadChunk(plain.nodeToken, "ep.1", records), 200);
    const answer = await json<LogChunkAnswer>(await postTallied(node.nodeToken, "ep.1", broken, chunk), 200);
    expect(answer).toMatchObject({ accepted: 60, counted: "records" });
    expect(answer.tallyRefused).toMatch(/^hours: .*host counts/);
    await flushIngest();
    expect(await rowsOf(node.nodeId)).toEqual(await rowsOf(plain.nodeId));
    // Whoever watches the fleet hears of it: one open alert for the node, however many chunks.
    const open = () =>
      env.DB.prepare("SELECT kind, summary, details FROM alerts WHERE subject = ? AND resolved_at IS NULL")
        .bind(node.nodeId)
        .all<{ kind: string; summary: string; details: string }>();
    await json(await postTallied(node.nodeToken, "ep.2", broken, chunk), 200);
    let alerts = (await open()).results;
    for (let i = 0; i < 100 && alerts.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20)); // fired after the answer (waitUntil)
      alerts = (await open()).results;
    }
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ kind: "logs.tally_refused", summary: expect.stringContaining("ep.") });
    expect(JSON.parse(alerts[0]!.details).reason).toMatch(/^hours: .*host counts/);
    // A plain node's uploads never raise it.
    expect(
      (await env.DB.prepare("SELECT COUNT(*) AS n FROM alerts WHERE subject = ?").bind(plain.nodeId).first())!
        .n,
    ).toBe(0);
  });

  it("a verified tally that differs from its records is not used; unverified, it is trusted as the node's word", async () => {
    const plain = await enrollNode();
    const node = await enrollNode();
    const records = mixed("t3");
    const chunk = new Uint8Array(gzipSync(ndjson(records)));
    // Consistent in itself, but of other records: every request moved to another client.
    const other = tallyChunk(
      new Uint8Array(gzipSync(ndjson(records.map((r) => ({ ...r, client: "10.9.9.9" }))))),
    )!;
    await json(await uploadChunk(plain.nodeToken, "ep.1", records), 200);
    const verified = await acceptWith(
      { TALLY_VERIFY_EVERY: "1" },
      node.nodeId,
      "ep.1",
      tallied(other, chunk),
      other.byteLength,
    );
    expect(verified).toMatchObject({ accepted: 60, counted: "records" });
    expect(verified.tallyRefused).toMatch(/^differs from the records: /);
    await flushIngest();
    expect(await rowsOf(node.nodeId)).toEqual(await rowsOf(plain.nodeId));

    const trusting = await enrollNode();
    const unverified = await acceptWith(
      { TALLY_VERIFY_EVERY: "0" },
      trusting.nodeId,
      "ep.1",
      tallied(other, chunk),
      other.byteLength,
    );
    expect(unverified).toEqual({ accepted: 60, duplicate: false, counted: "tally" });
    await flushIngest();
    const clients = await env.DB.prepare("SELECT DISTINCT key FROM rollups WHERE node_id = ? AND kind = 7")
      .bind(trusting.nodeId)
      .all<{ key: string }>();
    expect(clients.results.map((r) => r.key)).toEqual(["10.9.9.9"]);
  });

  it("search skips archived lines that are not records instead of failing (an unverified tally's raw chunk)", async () => {
    const node = await enrollNode();
    const records = mixed("t4").slice(0, 5);
    const tally = tallyChunk(new Uint8Array(gzipSync(ndjson(records))))!;
    const junk = `${ndjson(records)}not json\n{"ts":"2026-11-20T10:01:00.000Z","host":7}\n`;
    const chunk = new Uint8Array(gzipSync(junk));
    expect(
      await acceptWith(
        { TALLY_VERIFY_EVERY: "0" },
        node.nodeId,
        "ep.1",
        tallied(tally, chunk),
        tally.byteLength,
      ),
    ).toMatchObject({
      counted: "tally",
    });
    await flushIngest();
    const page = await json<{ rows: { requestId: string }[] }>(
      await call(
        `/api/v1/requests?from=${DAY + 10 * 3_600_000}&to=${DAY + 11 * 3_600_000}&node=${node.nodeId}`,
      ),
      200,
    );
    expect(page.rows.map((r) => r.requestId).sort()).toEqual(records.map((r) => r.requestId).sort());
  });

  it("refuses a framing it cannot read with 4xx naming it, and counts nothing", async () => {
    const node = await enrollNode();
    const records = mixed("t5");
    const chunk = new Uint8Array(gzipSync(ndjson(records)));
    const tally = tallyChunk(chunk)!;
    const post = (length: string, body: Uint8Array) =>
      call("/api/agent/v1/logs", {
        method: "POST",
        token: node.nodeToken,
        rawBody: body,
        headers: { "X-Fleetgate-Chunk": "ep.9", "X-Fleetgate-Tally-Length": length },
      });
    const bad = await expectError(await post("ten", tallied(tally, chunk)), 400, "VALIDATION_FAILED");
    expect(JSON.stringify(bad)).toContain("headers.x-fleetgate-tally-length");
    await expectError(await post(String(tally.byteLength + 5), tallied(tally, chunk)), 400, "BAD_REQUEST");
    await expectError(
      await post(String(tally.byteLength), tallied(tally, new Uint8Array(40))),
      400,
      "BAD_REQUEST",
    );
    await expectError(
      await post(String(tally.byteLength), tallied(tally, new Uint8Array(1024 * 1024 + 1).fill(0x1f))),
      413,
      "PAYLOAD_TOO_LARGE",
    );
    const notJson = new Uint8Array(gzipSync("{"));
    await expectError(await post(String(notJson.byteLength), tallied(notJson, chunk)), 400, "BAD_REQUEST");
    await flushIngest();
    expect(await rowsOf(node.nodeId)).toEqual([]);
  });

  it("a recent tallied chunk sent twice counts once without a ledger read; an old one asks the ledger, compacted runs included", async () => {
    const node = await enrollNode();
    const now = Date.now();
    const recent = mixed("t6").map((r, i) => ({
      ...r,
      ts: new Date(now - 600_000 + i * 1000).toISOString(),
    }));
    const chunk = new Uint8Array(gzipSync(ndjson(recent)));
    const tally = tallyChunk(chunk)!;
    expect(await json(await postTallied(node.nodeToken, "ep.1", tally, chunk), 200)).toMatchObject({
      accepted: 60,
      duplicate: false,
    });
    // Still buffered: the coalescer's seen ids answer.
    expect(await json(await postTallied(node.nodeToken, "ep.1", tally, chunk), 200)).toMatchObject({
      accepted: 0,
      duplicate: true,
    });
    await flushIngest();
    const summary = await json<{ requests: number }>(
      await call(`/api/v1/reports/summary?node=${node.nodeId}&from=${now - 3_600_000}&to=${now + 3_600_000}`),
      200,
    );
    expect(summary.requests).toBe(60);

    // Three days old and inside a compacted ledger run: only D1 knows it was counted.
    const old = mixed("t7").map((r, i) => ({
      ...r,
      ts: new Date(now - 3 * 86_400_000 + i * 1000).toISOString(),
    }));
    const oldChunk = new Uint8Array(gzipSync(ndjson(old)));
    await env.DB.prepare(
      "INSERT INTO log_chunk_runs (node_id, epoch, first_seq, last_seq, records, first_ts, last_ts) VALUES (?, 'old', 1, 9, 60, ?, ?)",
    )
      .bind(node.nodeId, now - 3 * 86_400_000, now - 3 * 86_400_000 + 60_000)
      .run();
    expect(
      await json(await postTallied(node.nodeToken, "old.5", tallyChunk(oldChunk)!, oldChunk), 200),
    ).toEqual({
      accepted: 0,
      duplicate: true,
      counted: "tally",
    });
  });
});
