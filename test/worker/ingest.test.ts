import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { FLEET, KIND } from "../../worker/services/rollup-kinds";
import { call, expectError, json } from "./helpers/api";
import { enrollNode } from "./helpers/factories";
import { record, uploadChunk } from "./helpers/logs";

async function rollup(kind: number, nodeId: string, key: string) {
  return env.DB.prepare(
    `SELECT SUM(requests) AS requests, SUM(blocked) AS blocked, SUM(bytes_in) AS bytesIn, SUM(bytes_out) AS bytesOut
     FROM rollups WHERE kind = ? AND node_id = ? AND key = ?`,
  )
    .bind(kind, nodeId, key)
    .first<{
      requests: number | null;
      blocked: number | null;
      bytesIn: number | null;
      bytesOut: number | null;
    }>();
}

describe("log ingestion", () => {
  it("accepts a chunk, rolls it up exactly as computed by hand, and counts a retry once", async () => {
    const node = await enrollNode();
    const records = [
      record({ host: "a.example", bytesIn: 10, bytesOut: 100 }),
      record({ host: "a.example", bytesIn: 20, bytesOut: 200, ts: "2026-11-20T10:15:59.999Z" }),
      record({
        host: "b.example",
        action: "block",
        status: 403,
        rule: "no-b",
        bytesIn: 5,
        bytesOut: 50,
        user: "alice",
      }),
      record({
        host: "A.Example",
        ts: "2026-11-20T11:00:00.000Z",
        client: "10.1.2.4",
        bytesIn: 1,
        bytesOut: 2,
      }),
    ];
    const first = await json(await uploadChunk(node.nodeToken, "ep1.1", records), 200);
    expect(first).toEqual({ accepted: 4, duplicate: false });
    const again = await json(await uploadChunk(node.nodeToken, "ep1.1", records), 200);
    expect(again).toEqual({ accepted: 0, duplicate: true });

    expect(await rollup(KIND.hostHour, node.nodeId, "a.example")).toEqual({
      requests: 3,
      blocked: 0,
      bytesIn: 31,
      bytesOut: 302,
    });
    expect(await rollup(KIND.hostDay, FLEET, "a.example")).toEqual({
      requests: 3,
      blocked: 0,
      bytesIn: 31,
      bytesOut: 302,
    });
    expect(await rollup(KIND.hostHour, FLEET, "b.example")).toEqual({
      requests: 1,
      blocked: 1,
      bytesIn: 5,
      bytesOut: 50,
    });
    expect(await rollup(KIND.totalMinute, node.nodeId, "")).toEqual({
      requests: 4,
      blocked: 1,
      bytesIn: 36,
      bytesOut: 352,
    });
    expect(await rollup(KIND.totalHour, FLEET, "")).toEqual({
      requests: 4,
      blocked: 1,
      bytesIn: 36,
      bytesOut: 352,
    });
    expect(await rollup(KIND.ruleDay, FLEET, "no-b")).toEqual({
      requests: 1,
      blocked: 1,
      bytesIn: 5,
      bytesOut: 50,
    });
    expect(await rollup(KIND.userHour, node.nodeId, "alice")).toEqual({
      requests: 1,
      blocked: 1,
      bytesIn: 5,
      bytesOut: 50,
    });
    expect(await rollup(KIND.clientHour, node.nodeId, "10.1.2.3")).toEqual({
      requests: 3,
      blocked: 1,
      bytesIn: 35,
      bytesOut: 350,
    });
    // Per-node rows stop at the hour; day rows are fleet-wide only.
    expect((await rollup(KIND.hostDay, node.nodeId, "a.example"))?.requests).toBeNull();
    const minutes = await env.DB.prepare(
      "SELECT bucket, requests FROM rollups WHERE kind = ? AND node_id = ? ORDER BY bucket",
    )
      .bind(KIND.totalMinute, node.nodeId)
      .all<{ bucket: number; requests: number }>();
    expect(minutes.results).toEqual([
      { bucket: Date.parse("2026-11-20T10:15:00Z"), requests: 3 },
      { bucket: Date.parse("2026-11-20T11:00:00Z"), requests: 1 },
    ]);
  });

  it("counts concurrent duplicates of the same chunk once", async () => {
    const node = await enrollNode();
    const records = Array.from({ length: 200 }, (_, i) => record({ host: `h${i % 17}.example` }));
    const answers = await Promise.all(
      [1, 2, 3, 4].map(() => uploadChunk(node.nodeToken, "race.7", records).then((r) => r.json())),
    );
    expect(answers.filter((a) => (a as { duplicate: boolean }).duplicate === false)).toHaveLength(1);
    const total = await rollup(KIND.totalHour, node.nodeId, "");
    expect(total?.requests).toBe(200);
  });

  it("accepts the tunnel records' TLS fields (sni, ech) and refuses them mistyped", async () => {
    const node = await enrollNode();
    const tunnel = record({
      scheme: "connect",
      method: "CONNECT",
      port: 443,
      sni: "www.example.com",
      ech: true,
    });
    expect(await json(await uploadChunk(node.nodeToken, "tls.1", [tunnel]), 200)).toEqual({
      accepted: 1,
      duplicate: false,
    });
    const body = await expectError(
      await uploadChunk(node.nodeToken, "tls.2", [{ ...tunnel, ech: "yes" }]),
      422,
      "CHUNK_INVALID",
    );
    expect(body.error.message).toContain("ech");
  });

  it("refuses a chunk with a bad record with 422 naming the line, and stores nothing", async () => {
    const node = await enrollNode();
    const bad = [record(), record({ status: "x" as unknown as number }), record()];
    const res = await uploadChunk(node.nodeToken, "bad.1", bad);
    const body = await expectError(res, 422, "CHUNK_INVALID");
    expect(body.error.message).toContain("line 2");
    expect(body.error.message).toContain("status");
    const notJson = await expectError(
      await uploadChunk(node.nodeToken, "bad.2", '{"ts":\n'),
      422,
      "CHUNK_INVALID",
    );
    expect(notJson.error.message).toContain("line 1");
    const unknownField = await expectError(
      await uploadChunk(node.nodeToken, "bad.3", [{ ...record(), extra: 1 }]),
      422,
      "CHUNK_INVALID",
    );
    expect(unknownField.error.message).toContain("line 1");
    const count = await env.DB.prepare("SELECT COUNT(*) AS n FROM log_chunks WHERE node_id = ?")
      .bind(node.nodeId)
      .first<{ n: number }>();
    expect(count?.n).toBe(0);
  });

  it("refuses a gzip bomb without inflating it fully", async () => {
    const node = await enrollNode();
    // 64 MiB of one repeated line compresses to well under 1 MiB.
    const line = `${JSON.stringify(record())}\n`;
    const bomb = line.repeat(Math.ceil((64 * 1024 * 1024) / line.length));
    const res = await uploadChunk(node.nodeToken, "bomb.1", bomb);
    const body = await expectError(res, 413, "PAYLOAD_TOO_LARGE");
    expect(body.error.message).toContain("inflated");
  });

  it("refuses oversize, unencoded, garbage and over-count chunks with 4xx", async () => {
    const node = await enrollNode();
    const random = crypto.getRandomValues(new Uint8Array(60_000));
    const big = new Uint8Array(1024 * 1024 + 10);
    for (let i = 0; i < big.length; i += random.length)
      big.set(random.subarray(0, Math.min(random.length, big.length - i)), i);
    await expectError(
      await call("/api/agent/v1/logs", {
        method: "POST",
        token: node.nodeToken,
        rawBody: big,
        headers: { "Content-Encoding": "gzip", "X-Fleetgate-Chunk": "big.1" },
      }),
      413,
      "PAYLOAD_TOO_LARGE",
    );
    await expectError(
      await call("/api/agent/v1/logs", {
        method: "POST",
        token: node.nodeToken,
        rawBody: JSON.stringify(record()),
        headers: { "X-Fleetgate-Chunk": "plain.1" },
      }),
      415,
      "UNSUPPORTED_MEDIA_TYPE",
    );
    await expectError(
      await call("/api/agent/v1/logs", {
        method: "POST",
        token: node.nodeToken,
        rawBody: "definitely not gzip",
        headers: { "Content-Encoding": "gzip", "X-Fleetgate-Chunk": "junk.1" },
      }),
      400,
      "BAD_REQUEST",
    );
    const many = `${JSON.stringify(record())}\n`.repeat(50_001);
    await expectError(await uploadChunk(node.nodeToken, "many.1", many), 413, "PAYLOAD_TOO_LARGE");
    await expectError(await uploadChunk(node.nodeToken, "no-seq", [record()]), 400, "VALIDATION_FAILED");
    await expectError(await uploadChunk("fgn_wrong", "x.1", [record()]), 401, "NODE_UNKNOWN");
  });
});
