import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { LogRecord } from "../../protocol/wire";
import { getDb } from "../../worker/db/client";
import { archiveKey, batchKey } from "../../worker/services/chunk-archive";
import { runHousekeeping } from "../../worker/services/housekeeping";
import { flushAllCoalescers } from "../../worker/services/ingest-accept";
import { exportRequests, type RequestFilter, searchRequests } from "../../worker/services/request-search";
import { call, expectError, json } from "./helpers/api";
import { createApiToken, enrollNode } from "./helpers/factories";
import { gzip, record, uploadChunk as upload } from "./helpers/logs";

/** The real POST /logs, then the ingest coalescers' flush (the index is written with the ledger). */
async function uploadChunk(...args: Parameters<typeof upload>) {
  const response = await upload(...args);
  await flushAllCoalescers(env);
  return response;
}

const HOUR = 3_600_000;

/** Every key in the archive bucket (tests of one file share it). */
async function archiveKeys(): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const listed = await env.LOG_ARCHIVE.list({ prefix: "logs/", ...(cursor ? { cursor } : {}) });
    keys.push(...listed.objects.map((o) => o.key));
    cursor = listed.truncated ? listed.cursor : undefined;
  } while (cursor);
  return keys;
}
const db = () => getDb(env.DB);

interface Row {
  ts: string;
  requestId: string;
  nodeId: string;
  node: string;
  action: string;
  host: string;
  path: string | null;
  user: string | null;
}
interface Page {
  rows: Row[];
  nextCursor: string | null;
  partial: boolean;
  scanned: { chunks: number; records: number };
}

/** A deterministic spread of records over one hour, with repeated timestamps (ties) on purpose. */
function makeRecords(hourStart: number, count: number, seed: number): LogRecord[] {
  let x = seed;
  const rand = (n: number) => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % n;
  };
  const hosts = ["www.example.com", "example.com", "api.Example.com", "news.test", "badexample.com"];
  const out: LogRecord[] = [];
  for (let i = 0; i < count; i++) {
    const blocked = rand(4) === 0;
    out.push(
      record({
        ts: new Date(hourStart + rand(40) * 60_000 + rand(3) * 1000).toISOString(),
        client: `10.0.0.${rand(4) + 1}`,
        ...(rand(3) === 0 ? {} : { user: ["alice", "bob", "carol"][rand(3)]! }),
        host: hosts[rand(hosts.length)]!,
        path: `/p/${i}?q=${seed}`,
        status: blocked ? 403 : [200, 204, 301, 404, 502][rand(5)]!,
        action: blocked ? "block" : "allow",
        ...(blocked ? { rule: ["no-social", "no-news"][rand(2)]! } : {}),
        bytesIn: rand(1000),
        bytesOut: rand(100_000),
      }),
    );
  }
  return out;
}

interface Sent {
  record: LogRecord;
  nodeId: string;
}

/** Two nodes, several overlapping chunks each, all through the real POST /logs. */
async function seed(hourStart: number, seedValue: number) {
  const a = await enrollNode({ hostname: "proxy-a.example" });
  const b = await enrollNode({ hostname: "proxy-b.example" });
  const sent: Sent[] = [];
  let n = 0;
  for (const node of [a, b, a, b, a]) {
    const records = makeRecords(hourStart, 20 + n * 7, seedValue + n);
    const chunk = `ep${seedValue}.${n++}`;
    expect((await json(await uploadChunk(node.nodeToken, chunk, records), 200)).accepted).toBe(
      records.length,
    );
    for (const r of records) sent.push({ record: r, nodeId: node.nodeId });
  }
  return { a, b, sent };
}

const newestFirst = (rows: Sent[]) =>
  rows
    .slice()
    .sort((x, y) => Date.parse(y.record.ts) - Date.parse(x.record.ts))
    .map((s) => s.record.requestId);

async function searchAll(query: string, limit: number, token?: string) {
  const ids: string[] = [];
  const times: number[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 1000; pages++) {
    const page: Page = await json<Page>(
      await call(
        `/api/v1/requests?${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
        token ? { token } : {},
      ),
      200,
    );
    expect(page.rows.length).toBeLessThanOrEqual(limit);
    for (const row of page.rows) {
      ids.push(row.requestId);
      times.push(Date.parse(row.ts));
    }
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return { ids, times };
}

describe("raw chunk archive", () => {
  it("keeps an accepted chunk in R2 as received, indexed once, and never re-archives a duplicate", async () => {
    const node = await enrollNode();
    const records = [
      record({ ts: "2026-10-01T08:00:05.000Z" }),
      record({ ts: "2026-10-01T08:00:01.000Z", action: "block", status: 403, rule: "r1" }),
    ];
    const text = `${records.map((r) => JSON.stringify(r)).join("\n")}\n`;
    const body = new Uint8Array(await gzip(text));
    const send = () =>
      call("/api/agent/v1/logs", {
        token: node.nodeToken,
        rawBody: body,
        headers: {
          "Content-Type": "application/x-ndjson",
          "Content-Encoding": "gzip",
          "X-Fleetgate-Chunk": "arch.1",
        },
      });
    expect(await json(await send(), 200)).toEqual({ accepted: 2, duplicate: false });
    expect(await json(await send(), 200)).toEqual({ accepted: 0, duplicate: true });
    await flushAllCoalescers(env);
    expect(await json(await send(), 200)).toEqual({ accepted: 0, duplicate: true });

    const { results } = await env.DB.prepare(
      "SELECT node_id AS nodeId, epoch, seq, first_ts AS firstTs, last_ts AS lastTs, records, bytes, object, offset FROM log_archive WHERE node_id = ?",
    )
      .bind(node.nodeId)
      .all<{ object: string; offset: number; bytes: number }>();
    expect(results).toEqual([
      {
        nodeId: node.nodeId,
        epoch: "arch",
        seq: 1,
        firstTs: Date.parse("2026-10-01T08:00:01.000Z"),
        lastTs: Date.parse("2026-10-01T08:00:05.000Z"),
        records: 2,
        bytes: body.byteLength,
        object: expect.stringMatching(/^[0-9a-z]{8,9}-[0-9a-z]{8}$/),
        offset: expect.any(Number),
      },
    ]);
    // The chunk sits in its flush's object, byte for byte, at its offset.
    const [row] = results;
    expect(batchKey(row!.object)).toMatch(/^logs\/b\/\d{4}-\d\d-\d\d\/\d\d\/[0-9a-z-]{17,18}\.ndjson\.gz$/);
    const object = await env.LOG_ARCHIVE.get(batchKey(row!.object), {
      range: { offset: row!.offset, length: row!.bytes },
    });
    expect(new Uint8Array(await object!.arrayBuffer())).toEqual(body);
    expect(object!.httpMetadata?.contentEncoding).toBe("gzip");
  });

  it("writes one R2 object per flush: the chunks of every node back to back, each indexed at its offset", async () => {
    const before = await archiveKeys();
    const nodes = [await enrollNode(), await enrollNode(), await enrollNode()];
    const bodies: Uint8Array[] = [];
    for (const [i, node] of nodes.entries()) {
      const text = `${JSON.stringify(record({ ts: "2026-10-03T08:00:00.000Z", requestId: `batch-${i}` }))}\n`;
      bodies.push(new Uint8Array(await gzip(text)));
      await upload(node.nodeToken, "batch.1", text);
    }
    await flushAllCoalescers(env);
    const { results } = await env.DB.prepare(
      "SELECT node_id AS nodeId, object, offset, bytes FROM log_archive WHERE epoch = 'batch'",
    ).all<{ nodeId: string; object: string; offset: number; bytes: number }>();
    expect(results).toHaveLength(3);
    // One object per coalescer shard that held a chunk, never one per chunk.
    const objects = new Set(results.map((r) => batchKey(r.object)));
    expect(objects.size).toBeLessThanOrEqual(3);
    expect((await archiveKeys()).filter((k) => !before.includes(k)).sort()).toEqual([...objects].sort());
    for (const row of results) {
      const i = nodes.findIndex((n) => n.nodeId === row.nodeId);
      const part = await env.LOG_ARCHIVE.get(batchKey(row.object), {
        range: { offset: row.offset, length: row.bytes },
      });
      expect(new Uint8Array(await part!.arrayBuffer())).toEqual(bodies[i]);
    }
  });

  it("archives nothing for a refused chunk", async () => {
    await flushAllCoalescers(env);
    const before = await archiveKeys();
    const node = await enrollNode();
    const bad = `${JSON.stringify(record({ ts: "2026-10-02T08:00:00.000Z" }))}\n{"ts":1}\n`;
    await expectError(await uploadChunk(node.nodeToken, "bad.1", bad), 422, "CHUNK_INVALID");
    const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM log_archive WHERE node_id = ?")
      .bind(node.nodeId)
      .first<{ n: number }>();
    expect(row!.n).toBe(0);
    await flushAllCoalescers(env);
    expect(await archiveKeys()).toEqual(before);
  });

  it("drops index rows past ARCHIVE_RETENTION_DAYS, then the flush objects and per-chunk objects of days past it", async () => {
    const node = await enrollNode();
    // Record times stay inside the master's accepted window (RETENTION_DAYS), the cron runs later.
    const day = 24 * HOUR;
    const now = Date.now() + 15 * day;
    const old = record({ ts: new Date(now - 35 * day).toISOString() });
    const recent = record({ ts: new Date(now - 16 * day).toISOString() });
    await json(await uploadChunk(node.nodeToken, "ret.1", [old]), 200);
    await json(await uploadChunk(node.nodeToken, "ret.2", [recent]), 200);
    // A chunk archived as its own object (before 0009), and an object a failed flush left unnamed.
    const legacy = record({ ts: new Date(now - 40 * day).toISOString() });
    const legacyKey = archiveKey({
      nodeId: node.nodeId,
      epoch: "leg",
      seq: 1,
      firstTs: Date.parse(legacy.ts),
    });
    await env.LOG_ARCHIVE.put(legacyKey, new Uint8Array(await gzip(`${JSON.stringify(legacy)}\n`)));
    await env.DB.prepare(
      "INSERT INTO log_archive (node_id, epoch, seq, first_ts, last_ts, records, bytes, lag_ms) VALUES (?, 'leg', 1, ?, ?, 1, 10, 0)",
    )
      .bind(node.nodeId, Date.parse(legacy.ts), Date.parse(legacy.ts))
      .run();
    const orphan = `logs/b/${new Date().toISOString().slice(0, 10)}/00/1-orphan.ndjson.gz`;
    await env.LOG_ARCHIVE.put(orphan, "x");
    const seqs = async () =>
      (
        await env.DB.prepare(
          "SELECT epoch || '.' || seq AS id FROM log_archive WHERE node_id = ? ORDER BY epoch, seq",
        )
          .bind(node.nodeId)
          .all<{ id: string }>()
      ).results.map((r) => r.id);
    const flushObjects = (
      await env.DB.prepare("SELECT DISTINCT object FROM log_archive WHERE node_id = ? AND object IS NOT NULL")
        .bind(node.nodeId)
        .all<{ object: string }>()
    ).results.map((r) => batchKey(r.object));
    expect(flushObjects).toHaveLength(2); // one flush per upload here
    const ours = [...flushObjects, legacyKey, orphan];
    const objects = async () => {
      let n = 0;
      for (const key of ours) if (await env.LOG_ARCHIVE.head(key)) n++;
      return n;
    };
    expect(await objects()).toBe(4);

    await runHousekeeping({ ...env, ARCHIVE_RETENTION_DAYS: "30" } as Env, now);
    expect(await seqs()).toEqual(["ret.2"]);
    expect(await env.LOG_ARCHIVE.head(legacyKey)).toBeNull();
    // Today's flush objects still hold ret.2 (and ret.1's bytes, which nothing names any more);
    // the orphan is today's too.
    expect(await objects()).toBe(3);

    // 30 days after the flushes' day ended, their objects go too, named or not.
    await runHousekeeping({ ...env, ARCHIVE_RETENTION_DAYS: "30" } as Env, Date.now() + 33 * day);
    expect(await seqs()).toEqual([]);
    expect(await objects()).toBe(0);
  });
});

describe("GET /api/v1/requests", () => {
  it("returns exactly the records sent for each filter, newest first", async () => {
    const hour = Date.parse("2026-11-03T10:00:00.000Z");
    const { a, sent } = await seed(hour, 100);
    const window = `from=${hour}&to=${hour + HOUR}`;
    const cases: [string, (s: Sent) => boolean][] = [
      ["", () => true],
      [`node=${a.nodeId}`, (s) => s.nodeId === a.nodeId],
      ["client=10.0.0.2", (s) => s.record.client === "10.0.0.2"],
      ["user=alice", (s) => s.record.user === "alice"],
      [
        "host=example.com",
        (s) => ["www.example.com", "example.com", "api.Example.com"].includes(s.record.host),
      ],
      ["action=block", (s) => s.record.action === "block"],
      ["rule=no-news", (s) => s.record.rule === "no-news"],
      ["status=404", (s) => s.record.status === 404],
      ["status=2xx", (s) => s.record.status >= 200 && s.record.status < 300],
      [
        `node=${a.nodeId}&action=block&user=bob`,
        (s) => s.nodeId === a.nodeId && s.record.action === "block" && s.record.user === "bob",
      ],
    ];
    for (const [filter, keep] of cases) {
      const expected = sent.filter(keep);
      expect(expected.length, filter).toBeGreaterThan(0);
      const { ids, times } = await searchAll(`${window}&${filter}`, 500);
      expect(ids.slice().sort(), filter).toEqual(expected.map((s) => s.record.requestId).sort());
      expect(times, filter).toEqual(times.slice().sort((x, y) => y - x));
      expect(ids.map((id) => expected.find((s) => s.record.requestId === id)!.record.ts)).toEqual(
        newestFirst(expected).map((id) => expected.find((s) => s.record.requestId === id)!.record.ts),
      );
    }
    // A part of the hour: the bounds are [from, to).
    const from = hour + 10 * 60_000;
    const to = hour + 20 * 60_000;
    const part = await searchAll(`from=${from}&to=${to}`, 500);
    expect(part.ids.sort()).toEqual(
      sent
        .filter((s) => Date.parse(s.record.ts) >= from && Date.parse(s.record.ts) < to)
        .map((s) => s.record.requestId)
        .sort(),
    );
  });

  it("narrows to a site's nodes as they are now, in search and export; an unknown site or a site with a node is a 400", async () => {
    const hour = Date.parse("2026-11-03T14:00:00.000Z");
    const { a, b, sent } = await seed(hour, 300);
    const window = `from=${hour}&to=${hour + HOUR}`;
    const site = `berlin-${Date.now().toString(36)}`;
    await json(await call("/api/v1/sites", { body: { name: site } }), 201);
    const move = async (nodeId: string, to: string | null) =>
      json(await call(`/api/v1/nodes/${nodeId}`, { method: "PATCH", body: { site: to } }), 200);
    const ids = (keep: (s: Sent) => boolean) =>
      sent
        .filter(keep)
        .map((s) => s.record.requestId)
        .sort();
    // An empty site has no records; then node a joins it.
    expect((await searchAll(`${window}&site=${site}`, 500)).ids).toEqual([]);
    await move(a.nodeId, site);
    expect((await searchAll(`${window}&site=${site}`, 500)).ids.sort()).toEqual(
      ids((s) => s.nodeId === a.nodeId),
    );
    expect((await searchAll(`${window}&site=${site}&action=block`, 500)).ids.sort()).toEqual(
      ids((s) => s.nodeId === a.nodeId && s.record.action === "block"),
    );
    const exported = (await exportLines(`${window}&site=${site}`)).filter((l) => !l.end);
    expect(exported.map((l) => l.requestId as string).sort()).toEqual(ids((s) => s.nodeId === a.nodeId));
    // Membership is read at search time: b joins too, and its earlier records are the site's now.
    await move(b.nodeId, site);
    expect((await searchAll(`${window}&site=${site}`, 500)).ids.sort()).toEqual(ids(() => true));

    const unknown = await expectError(
      await call(`/api/v1/requests?${window}&site=nowhere`),
      400,
      "VALIDATION_FAILED",
    );
    expect(JSON.stringify(unknown)).toContain("query.site");
    await expectError(
      await call(`/api/v1/requests/export.ndjson?${window}&site=nowhere`),
      400,
      "VALIDATION_FAILED",
    );
    await expectError(
      await call(`/api/v1/requests?${window}&site=${site}&node=${a.nodeId}`),
      400,
      "VALIDATION_FAILED",
    );
    await expectError(await call(`/api/v1/requests?${window}&site=no%20spaces`), 400, "VALIDATION_FAILED");
  });

  it("shows each row's time, node hostname, client, user, method, host, path, status, action, rule and bytes", async () => {
    const node = await enrollNode({ hostname: "edge-7.example" });
    const r = record({
      ts: "2026-11-04T09:30:00.123Z",
      user: "dana",
      method: "POST",
      host: "upload.example.org",
      port: 8080,
      path: "/form?x=1",
      status: 403,
      action: "block",
      rule: "no-upload",
      bytesIn: 321,
      bytesOut: 0,
    });
    await json(await uploadChunk(node.nodeToken, "row.1", [r]), 200);
    const page = await json<{ rows: Record<string, unknown>[] }>(
      await call(`/api/v1/requests?from=2026-11-04T09:00:00Z&to=2026-11-04T10:00:00Z&node=${node.nodeId}`),
      200,
    );
    expect(page.rows).toEqual([
      {
        ts: r.ts,
        nodeId: node.nodeId,
        node: "edge-7.example",
        client: r.client,
        user: "dana",
        method: "POST",
        scheme: "http",
        host: "upload.example.org",
        port: 8080,
        path: "/form?x=1",
        status: 403,
        action: "block",
        rule: "no-upload",
        bytesIn: 321,
        bytesOut: 0,
        durationMs: r.durationMs,
        requestId: r.requestId,
      },
    ]);
  });

  it("pages through a window with the cursor: every record once, in order, also when a page stops at the chunk cap", async () => {
    const hour = Date.parse("2026-11-05T10:00:00.000Z");
    const { sent } = await seed(hour, 200);
    const expected = newestFirst(sent);
    for (const limit of [7, 50]) {
      const { ids, times } = await searchAll(`from=${hour}&to=${hour + HOUR}`, limit);
      expect(ids.length, `limit ${limit}`).toBe(sent.length);
      expect(new Set(ids).size).toBe(sent.length);
      expect(times).toEqual(times.slice().sort((x, y) => y - x));
      expect(ids.map((id) => sent.find((s) => s.record.requestId === id)!.record.ts)).toEqual(
        expected.map((id) => sent.find((s) => s.record.requestId === id)!.record.ts),
      );
    }
    // The chunk cap (here 1 and 2 chunks per page) ends pages early; the cursor still resumes exactly.
    const filter: RequestFilter = { from: hour, to: hour + HOUR };
    for (const maxChunks of [1, 2]) {
      for (const [limit, f] of [
        [5, filter],
        [500, filter],
        [3, { ...filter, user: "carol", action: "block" as const }],
      ] as const) {
        const ids: string[] = [];
        let cursor: string | undefined;
        let partialPages = 0;
        for (let pages = 0; pages < 2000; pages++) {
          const page = await searchRequests({
            db: db(),
            bucket: env.LOG_ARCHIVE,
            filter: f,
            limit,
            cursor,
            maxChunks,
          });
          if (page.partial) partialPages++;
          ids.push(...page.rows.map((r) => r.requestId));
          if (!page.nextCursor) break;
          cursor = page.nextCursor;
        }
        const want = sent.filter(
          (s) =>
            (f.user === undefined || s.record.user === f.user) &&
            (f.action === undefined || s.record.action === f.action),
        );
        expect(ids.slice().sort(), `maxChunks ${maxChunks} limit ${limit}`).toEqual(
          want.map((s) => s.record.requestId).sort(),
        );
        expect(new Set(ids).size).toBe(ids.length);
        if (limit === 500) expect(partialPages).toBeGreaterThan(0);
      }
    }
  });

  it("reads only the chunks of the window, and stops once the first page is certain", async () => {
    const node = await enrollNode();
    const day = Date.parse("2026-11-06T00:00:00.000Z");
    for (let h = 0; h < 6; h++) {
      const records = Array.from({ length: 20 }, (_, i) =>
        record({ ts: new Date(day + h * HOUR + i * 60_000).toISOString() }),
      );
      await json(await uploadChunk(node.nodeToken, `win.${h}`, records), 200);
    }
    const page = await json<Page>(
      await call(`/api/v1/requests?from=${day + 2 * HOUR}&to=${day + 3 * HOUR}&node=${node.nodeId}`),
      200,
    );
    expect(page.rows).toHaveLength(20);
    expect(page.scanned.chunks).toBe(1);
    const firstPage = await json<Page>(
      await call(`/api/v1/requests?from=${day}&to=${day + 6 * HOUR}&node=${node.nodeId}&limit=10`),
      200,
    );
    expect(firstPage.rows).toHaveLength(10);
    expect(firstPage.scanned.chunks).toBe(1); // the newest chunk alone fills the page
    expect(firstPage.nextCursor).not.toBeNull();
  });

  it("finds a chunk whose records span more than an hour (the wide-chunk index)", async () => {
    const node = await enrollNode();
    const early = record({ ts: "2026-11-09T01:00:00.000Z" });
    const late = record({ ts: "2026-11-09T05:30:00.000Z", action: "block", status: 403, rule: "late" });
    await json(await uploadChunk(node.nodeToken, "wide.1", [early, late]), 200);
    const at = (from: string, to: string) =>
      call(`/api/v1/requests?from=${from}&to=${to}&node=${node.nodeId}`).then((r) => json<Page>(r, 200));
    expect((await at("2026-11-09T05:00:00Z", "2026-11-09T06:00:00Z")).rows.map((r) => r.requestId)).toEqual([
      late.requestId,
    ]);
    const between = await at("2026-11-09T03:00:00Z", "2026-11-09T04:00:00Z");
    expect(between.rows).toEqual([]);
    expect(between.scanned.chunks).toBe(1);
    expect((await at("2026-11-09T00:30:00Z", "2026-11-09T01:30:00Z")).rows.map((r) => r.requestId)).toEqual([
      early.requestId,
    ]);
  });

  it("stops scanning a chunk early only as far as its recorded disorder allows", async () => {
    const node = await enrollNode();
    const at = (m: number, s = 0) =>
      new Date(Date.parse("2026-11-10T10:00:00Z") + m * 60_000 + s * 1000).toISOString();
    // In time order except a long tunnel logged when it ended (10:02:30, written after 10:08)
    // and one written early (10:09:30 first).
    const records = [
      record({ ts: at(9, 30) }),
      ...Array.from({ length: 9 }, (_, i) => record({ ts: at(i) })),
      record({ ts: at(2, 30), method: "CONNECT", scheme: "connect", port: 443 }),
    ];
    await json(await uploadChunk(node.nodeToken, "lag.1", records), 200);
    const row = await env.DB.prepare("SELECT lag_ms AS lag FROM log_archive WHERE node_id = ?")
      .bind(node.nodeId)
      .first<{ lag: number }>();
    expect(row!.lag).toBe(Date.parse(at(9, 30)) - Date.parse(at(0)));
    const { ids } = await searchAll(
      `from=2026-11-10T10:00:00Z&to=2026-11-10T11:00:00Z&node=${node.nodeId}`,
      3,
    );
    expect(ids).toEqual(
      records
        .slice()
        .sort((x, y) => Date.parse(y.ts) - Date.parse(x.ts))
        .map((r) => r.requestId),
    );
  });

  it("refuses a window longer than 6 hours, an inverted window and a foreign cursor with 400", async () => {
    for (const path of ["/api/v1/requests", "/api/v1/requests/export.ndjson"]) {
      const tooLong = await expectError(
        await call(`${path}?from=2026-11-01T00:00:00Z&to=2026-11-01T06:00:01Z`),
        400,
        "VALIDATION_FAILED",
      );
      expect(tooLong.error.message).toMatch(/at most 6 h/);
      expect(tooLong.error.details?.[0]?.path).toBe("query.from");
      await expectError(
        await call(`${path}?from=2026-11-01T02:00:00Z&to=2026-11-01T01:00:00Z`),
        400,
        "VALIDATION_FAILED",
      );
      await expectError(await call(`${path}?cursor=bm90LWEtY3Vyc29y`), 400, "VALIDATION_FAILED");
      await expectError(await call(`${path}?from=yesterday`), 400, "VALIDATION_FAILED");
      await expectError(await call(`${path}?status=abc`), 400, "VALIDATION_FAILED");
    }
  });

  it("is readable by a viewer and refused without a token", async () => {
    const viewer = await createApiToken("viewer");
    for (const path of ["/api/v1/requests", "/api/v1/requests/export.ndjson"]) {
      expect((await call(path, { token: viewer.token })).status).toBe(200);
      await expectError(await call(path, { token: null }), 401, "UNAUTHORIZED");
      await expectError(await call(path, { token: "fgt_not-a-real-token" }), 401, "UNAUTHORIZED");
    }
  });

  it("is in the OpenAPI document", async () => {
    const doc = await json<{ paths: Record<string, unknown> }>(await call("/api/openapi.json"), 200);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/api/v1/requests", "/api/v1/requests/export.ndjson"]),
    );
  });
});

async function exportLines(query: string) {
  const response = await call(`/api/v1/requests/export.ndjson?${query}`);
  const text = await response.text();
  expect(response.status, text).toBe(200);
  expect(response.headers.get("Content-Type")).toMatch(/^application\/x-ndjson/);
  return text
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("GET /api/v1/requests/export.ndjson", () => {
  it("streams the filter as NDJSON and resumes from any line's cursor with no record twice and none missed", async () => {
    const hour = Date.parse("2026-11-07T10:00:00.000Z");
    const { b, sent } = await seed(hour, 300);
    const window = `from=${hour}&to=${hour + HOUR}`;
    const all = await exportLines(window);
    const end = all.at(-1)!;
    expect(end).toMatchObject({ end: true, more: false });
    const records = all.slice(0, -1);
    expect(records.map((r) => r.requestId).sort()).toEqual(sent.map((s) => s.record.requestId).sort());
    const first = records[0]!;
    const original = sent.find((s) => s.record.requestId === first.requestId)!;
    expect(first).toEqual({
      ...original.record,
      nodeId: original.nodeId,
      node: expect.any(String),
      cursor: expect.any(String),
    });

    for (const at of [0, 1, 19, 20, 100, records.length - 1]) {
      const resumed = await exportLines(
        `${window}&cursor=${encodeURIComponent(String(records[at]!.cursor))}`,
      );
      expect(resumed.at(-1)).toMatchObject({ end: true, more: false });
      expect(resumed.slice(0, -1).map((r) => r.requestId)).toEqual(
        records.slice(at + 1).map((r) => r.requestId),
      );
    }

    // A filter, and a collector that keeps its end cursor: a chunk accepted later (a late upload
    // with older records) comes on the next pull, alone.
    const blocked = await exportLines(`${window}&action=block&node=${b.nodeId}`);
    expect(
      blocked
        .slice(0, -1)
        .map((r) => r.requestId)
        .sort(),
    ).toEqual(
      sent
        .filter((s) => s.nodeId === b.nodeId && s.record.action === "block")
        .map((s) => s.record.requestId)
        .sort(),
    );
    const late = makeRecords(hour, 9, 999);
    await json(await uploadChunk(b.nodeToken, "late.1", late), 200);
    const next = await exportLines(`${window}&cursor=${encodeURIComponent(String(end.cursor))}`);
    expect(next.slice(0, -1).map((r) => r.requestId)).toEqual(late.map((r) => r.requestId));
    expect(next.at(-1)).toMatchObject({ end: true, more: false });
  });

  it("ends a response at the chunk cap with more:true and a cursor that continues exactly", async () => {
    const hour = Date.parse("2026-11-08T10:00:00.000Z");
    const { sent } = await seed(hour, 400);
    const filter: RequestFilter = { from: hour, to: hour + HOUR, user: "alice" };
    const ids: string[] = [];
    let cursor: string | undefined;
    let responses = 0;
    for (;;) {
      responses++;
      let text = "";
      for await (const part of exportRequests({
        db: db(),
        bucket: env.LOG_ARCHIVE,
        filter,
        cursor,
        maxChunks: 2,
      }))
        text += part;
      const lines = text
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as { requestId?: string; end?: boolean; more?: boolean; cursor: string });
      const last = lines.at(-1)!;
      expect(last.end).toBe(true);
      ids.push(...lines.slice(0, -1).map((l) => l.requestId!));
      cursor = last.cursor;
      if (!last.more) break;
    }
    expect(responses).toBe(3); // 5 chunks, 2 per response
    expect(ids.sort()).toEqual(
      sent
        .filter((s) => s.record.user === "alice")
        .map((s) => s.record.requestId)
        .sort(),
    );
  });
});
