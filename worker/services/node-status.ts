import { eq, sql } from "drizzle-orm";
import type { StatusReport } from "../../protocol/wire";
import type { Db } from "../db/client";
import { nodeEvents, nodes } from "../db/schema";

/** Events a node keeps (newest first); older ones go as new ones arrive. */
export const NODE_EVENTS_KEPT = 100;
/** The same event again within this window is not a new event (a flapping node stays quiet). */
export const EVENT_DEDUP_MS = 10 * 60_000;

/** One status report as it is stored: what the nodes row gets, flattened for json_each. */
export interface StatusRow {
  id: string;
  at: number;
  state: "applied" | "rejected";
  appliedVersion: number | null;
  appliedHash: string | null;
  /** The event detail (the node's own words) and the stored last error, for a rejection. */
  detail: string | null;
  lastError: string | null;
  address: string | null;
  agentVersion: string;
  proxyKind: string;
  proxyListen: string;
  proxyVersion: string;
  uptimeSeconds: number;
  spool: StatusReport["spool"];
}

export function statusRow(
  nodeId: string,
  report: StatusReport,
  address: string | null,
  at: number,
): StatusRow {
  const rejected = report.state === "rejected";
  return {
    id: nodeId,
    at,
    state: report.state,
    appliedVersion: report.appliedVersion,
    appliedHash: report.appliedHash,
    detail: rejected ? (report.error ?? null) : null,
    lastError: rejected ? (report.error ?? "rejected without a reason") : null,
    address,
    agentVersion: report.agentVersion,
    proxyKind: report.proxy.kind,
    proxyListen: report.proxy.listen,
    proxyVersion: report.proxy.version,
    uptimeSeconds: Math.floor(report.uptimeSeconds),
    spool: report.spool,
  };
}

// Rows travel as one JSON array per statement (two bound values however many reports): 400
// reports of ~500 bytes stay far below D1's 2 MB value limit.
const ROWS_PER_STATEMENT = 400;
const field = (name: keyof StatusRow) => sql.raw(`json_extract(r.value, '$.${name}')`);

/**
 * Splits a batch into statements of at most ROWS_PER_STATEMENT rows where no node appears twice:
 * each row goes to the first round that has room and lacks its node, so a node's later report
 * lands in a later round (order kept) and N distinct nodes take ceil(N / 400) rounds. (It used to
 * take the first round lacking the node, full or not, and open a new one-row round whenever that
 * one was full: a 1,250-report batch at 5,000 nodes became ~850 rounds of 3 statements each.)
 */
export function statusRounds(rows: StatusRow[], perRound = ROWS_PER_STATEMENT): StatusRow[][] {
  const rounds: { rows: StatusRow[]; ids: Set<string> }[] = [];
  for (const row of rows) {
    let round = rounds.find((r) => r.rows.length < perRound && !r.ids.has(row.id));
    if (!round) {
      round = { rows: [], ids: new Set() };
      rounds.push(round);
    }
    round.rows.push(row);
    round.ids.add(row.id);
  }
  return rounds.map((r) => r.rows);
}

/**
 * Records many ACK/NACKs in one batch: an event for each report whose outcome differs from the
 * stored one (compared in SQL, before the update in the same batch), then every row's fields.
 * A node appears at most once per round, so two reports of one node keep their order.
 */
export async function recordStatuses(db: Db, rows: StatusRow[]) {
  const statements = statusRounds(rows).flatMap((round) => {
    const reports = sql`(select value from json_each(${JSON.stringify(round)})) as r`;
    const rejected = sql`${field("state")} = 'rejected'`;
    const events = db.insert(nodeEvents).select(
      db
        .select({
          // Every column in table order; a null id lets SQLite assign the next one.
          id: sql<number>`null`.as("id"),
          nodeId: nodes.id,
          at: sql<number>`${field("at")}`.as("at"),
          type: sql<string>`case when ${rejected} then 'policy.rejected' else 'policy.applied' end`.as(
            "type",
          ),
          version: sql<number | null>`${field("appliedVersion")}`.as("version"),
          detail: sql<string | null>`${field("detail")}`.as("detail"),
        })
        .from(reports)
        .innerJoin(nodes, eq(nodes.id, field("id")))
        .where(
          sql`(${nodes.syncState} is not ${field("state")} or ${nodes.appliedVersion} is not ${field("appliedVersion")}
            or (${rejected} and ${nodes.lastError} is not ${field("lastError")}))
            and not exists (select 1 from ${nodeEvents} e where e.node_id = ${nodes.id}
              and e.at > ${field("at")} - ${EVENT_DEDUP_MS}
              and e.type = (case when ${rejected} then 'policy.rejected' else 'policy.applied' end)
              and e.version is ${field("appliedVersion")} and e.detail is ${field("detail")})`,
        ),
    );
    const update = db
      .update(nodes)
      .set({
        appliedVersion: sql`${field("appliedVersion")}`,
        appliedHash: sql`${field("appliedHash")}`,
        syncState: sql`${field("state")}`,
        lastStatusAt: sql`${field("at")}`,
        lastSeenAt: sql`max(coalesce(${nodes.lastSeenAt}, 0), ${field("at")})`,
        lastAddress: sql`${field("address")}`,
        agentVersion: sql`${field("agentVersion")}`,
        proxyKind: sql`${field("proxyKind")}`,
        proxyListen: sql`${field("proxyListen")}`,
        proxyVersion: sql`${field("proxyVersion")}`,
        uptimeSeconds: sql`${field("uptimeSeconds")}`,
        spool: sql`json(${field("spool")})`,
        lastError: sql`case when ${rejected} then ${field("lastError")} else ${nodes.lastError} end`,
        lastErrorAt: sql`case when ${rejected} then ${field("at")} else ${nodes.lastErrorAt} end`,
      })
      .from(reports)
      .where(eq(nodes.id, field("id")));
    // Each node keeps its newest NODE_EVENTS_KEPT events (services/nodes.ts).
    const trim = db.delete(nodeEvents).where(
      sql`${nodeEvents.nodeId} in (select value from json_each(${JSON.stringify(round.map((r) => r.id))}))
        and ${nodeEvents.id} <= (select e2.id from ${nodeEvents} e2 where e2.node_id = ${nodeEvents.nodeId}
          order by e2.id desc limit 1 offset ${NODE_EVENTS_KEPT})`,
    );
    return [events, update, trim];
  });
  const [first, ...rest] = statements;
  if (!first) return;
  await db.batch([first, ...rest]);
}
