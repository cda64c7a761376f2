// Compaction (the hourly cron): what keeps 90 days of reports within a stated D1 budget
// (docs/reports.md, Storage). Every request stays counted exactly once; only resolution is lost.
//  - A node's hourly dimension rows of days older than 48 h are summed into its day rows, and
//    its minute totals of those days are dropped (its hour totals stay).
//  - Fleet-wide hourly dimension rows of those days are dropped (fleet day rows already hold them).
//  - Day rows (per node and fleet) keep their top DAY_TOP_K keys per dimension; the rest is added
//    to the day's `(other)` row.
//  - Ledger rows of those days collapse into runs of consecutive chunk ids.
import type { Db } from "../db/client";
import { DAY_TOP_K, dayKindOf, hourKindOf, KEY_DIMS, OTHER_KEY } from "./ingest-fold";
import { DAY, FLEET, HOUR, KIND } from "./rollup-kinds";

export const COMPACT_AFTER_MS = 48 * HOUR;

/** Days before this instant are compacted: `now` − 48 h, down to 00:00 UTC. */
export function compactionCutoff(now: number) {
  const t = now - COMPACT_AFTER_MS;
  return t - (t % DAY);
}

const SUMS = `SUM(requests), SUM(blocked), SUM(auth), SUM(errors), SUM(bytes_in), SUM(bytes_out)`;
const ADD_ON_CONFLICT = `ON CONFLICT DO UPDATE SET
    requests = requests + excluded.requests, blocked = blocked + excluded.blocked,
    auth = auth + excluded.auth, errors = errors + excluded.errors,
    bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out`;
const COLUMNS = "kind, node_id, bucket, key, requests, blocked, auth, errors, bytes_in, bytes_out";

// ?1 day kind, ?2 node, ?3 first day, ?4 cutoff, ?5 K. Ties broken by key so both statements of
// one fold rank alike.
const RANKED_BEYOND_K = `SELECT bucket, key FROM (
    SELECT bucket, key, ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY requests DESC, key) AS rank
    FROM rollups WHERE kind = ?1 AND node_id = ?2 AND bucket >= ?3 AND bucket < ?4 AND key <> '${OTHER_KEY}')
  WHERE rank > ?5`;

function foldDayRows(
  d1: D1Database,
  dayKind: number,
  node: string,
  firstDay: number,
  cutoff: number,
  k: number,
) {
  return [
    d1
      .prepare(
        `INSERT INTO rollups (${COLUMNS})
         SELECT ?1, ?2, bucket, '${OTHER_KEY}', ${SUMS} FROM rollups
         WHERE kind = ?1 AND node_id = ?2 AND (bucket, key) IN (${RANKED_BEYOND_K})
         GROUP BY bucket
         ${ADD_ON_CONFLICT}`,
      )
      .bind(dayKind, node, firstDay, cutoff, k),
    d1
      .prepare(
        `DELETE FROM rollups WHERE kind = ?1 AND node_id = ?2 AND (bucket, key) IN (${RANKED_BEYOND_K})`,
      )
      .bind(dayKind, node, firstDay, cutoff, k),
  ];
}

async function oldestBefore(d1: D1Database, node: string, cutoff: number) {
  const kinds = KEY_DIMS.map(hourKindOf);
  const statements = kinds.map((kind) =>
    d1
      .prepare("SELECT MIN(bucket) AS oldest FROM rollups WHERE kind = ? AND node_id = ? AND bucket < ?")
      .bind(kind, node, cutoff),
  );
  const results = await d1.batch<{ oldest: number | null }>(statements);
  return KEY_DIMS.map((dim, i) => ({ dim, oldest: results[i]!.results[0]?.oldest ?? null }));
}

/** Compacts every node's and the fleet's rollups older than the cutoff; one batch per node. */
export async function compactRollups(db: Db, now = Date.now()) {
  const d1 = db.$client;
  const cutoff = compactionCutoff(now);
  // First tell reports to expect day rows before the cutoff, then compact: a report running
  // meanwhile reads day rows and (for nodes) hour rows, which hold every request at all times.
  await d1
    .prepare(
      `INSERT INTO report_state (id, compacted_before) VALUES (1, ?)
       ON CONFLICT DO UPDATE SET compacted_before = MAX(compacted_before, excluded.compacted_before)`,
    )
    .bind(cutoff)
    .run();
  const { results: nodes } = await d1.prepare("SELECT id FROM nodes").all<{ id: string }>();
  for (const node of [...nodes.map((n) => n.id), FLEET]) {
    const statements: D1PreparedStatement[] = [];
    for (const { dim, oldest } of await oldestBefore(d1, node, cutoff)) {
      if (oldest === null) continue;
      const firstDay = oldest - (oldest % DAY);
      const hourKind = hourKindOf(dim);
      const dayKind = dayKindOf(dim);
      if (node !== FLEET) {
        statements.push(
          d1
            .prepare(
              `INSERT INTO rollups (${COLUMNS})
               SELECT ?1, ?2, bucket - bucket % ${DAY}, key, ${SUMS} FROM rollups
               WHERE kind = ?3 AND node_id = ?2 AND bucket < ?4
               GROUP BY 3, 4
               ${ADD_ON_CONFLICT}`,
            )
            .bind(dayKind, node, hourKind, cutoff),
        );
      }
      statements.push(
        d1
          .prepare("DELETE FROM rollups WHERE kind = ? AND node_id = ? AND bucket < ?")
          .bind(hourKind, node, cutoff),
        ...foldDayRows(d1, dayKind, node, firstDay, cutoff, DAY_TOP_K[dim]!),
      );
    }
    if (node !== FLEET) {
      statements.push(
        d1
          .prepare("DELETE FROM rollups WHERE kind = ? AND node_id = ? AND bucket < ?")
          .bind(KIND.totalMinute, node, cutoff),
      );
    }
    if (statements.length) await d1.batch(statements);
  }
  await compactLedger(d1, cutoff);
}

interface LedgerRow {
  node_id: string;
  epoch: string;
  seq: number;
  records: number;
  first_ts: number;
  last_ts: number;
}

const LEDGER_BATCH = 20_000;

/**
 * Moves ledger rows whose records end before the cutoff into runs of consecutive ids. A chunk
 * id inside a run is as known as a ledger row (duplicates, gap reports).
 */
export async function compactLedger(d1: D1Database, cutoff: number) {
  for (;;) {
    const { results } = await d1
      .prepare(
        `SELECT node_id, epoch, seq, records, first_ts, last_ts FROM log_chunks WHERE last_ts < ?
         ORDER BY node_id, epoch, seq LIMIT ${LEDGER_BATCH}`,
      )
      .bind(cutoff)
      .all<LedgerRow>();
    if (!results.length) return;
    const runs: [string, string, number, number, number, number, number][] = [];
    for (const row of results) {
      const run = runs.at(-1);
      if (run && run[0] === row.node_id && run[1] === row.epoch && run[3] === row.seq - 1) {
        run[3] = row.seq;
        run[4] += row.records;
        run[5] = Math.min(run[5], row.first_ts);
        run[6] = Math.max(run[6], row.last_ts);
      } else {
        runs.push([row.node_id, row.epoch, row.seq, row.seq, row.records, row.first_ts, row.last_ts]);
      }
    }
    const json = JSON.stringify(runs);
    await d1.batch([
      d1
        .prepare(
          `INSERT INTO log_chunk_runs (node_id, epoch, first_seq, last_seq, records, first_ts, last_ts)
           SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6
           FROM json_each(?) WHERE true
           ON CONFLICT DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq),
             records = records + excluded.records, first_ts = MIN(first_ts, excluded.first_ts),
             last_ts = MAX(last_ts, excluded.last_ts)`,
        )
        .bind(json),
      d1
        .prepare(
          `DELETE FROM log_chunks WHERE rowid IN (
             SELECT c.rowid FROM json_each(?) j JOIN log_chunks c
             ON c.node_id = j.value ->> 0 AND c.epoch = j.value ->> 1
                AND c.seq BETWEEN j.value ->> 2 AND j.value ->> 3)`,
        )
        .bind(json),
    ]);
    if (results.length < LEDGER_BATCH) return;
  }
}
