// Staged rollout: a publish goes to a ring first; gates judged from what the master already knows
// (NACKs, the ring's report rollups) promote it to the fleet after the soak or halt it, and a
// halt rolls the ring back to the previous version. See docs/fleet.md. The gates' figures
// (reading only) are in rollout-gates.ts; this file holds the state changes, and stays one file
// past 300 lines because start, promote, halt, roll back and evaluate are one state machine.
import { and, desc, eq, inArray, isNull } from "drizzle-orm";
import type { Db } from "../db/client";
import { getDb } from "../db/client";
import { nodes, rollouts } from "../db/schema";
import type { Actor } from "../env";
import { AppError } from "../errors";
import { fireAlert } from "./alerts";
import { type AuditContext, auditInsert } from "./audit";
import { checkPolicy, getVersion, latestHead, type PolicyHead, publishPolicy, signingSeeds } from "./policy";
import { announceRollout, announceVersion } from "./policy-hub";
import {
  ACTIVE_STATES,
  activeRollout,
  assertNoActiveRollout,
  type RolloutRow,
  targetingOf,
} from "./rollout-active";
import { DEFAULT_GATES, type Gates, gateFigures } from "./rollout-gates";
import { inPercentRing } from "./rollout-target";
import { newId } from "./secrets";

export type Ring = { site: string } | { nodes: string[] } | { percent: number };

export const MAX_RING_NODES = 1_000;

export interface StartRolloutInput {
  policy: unknown;
  message: string;
  ring: Ring;
  soakSeconds: number;
  gates?: Partial<Gates>;
}

const SYSTEM: Actor = { id: "system:rollout", name: "rollout gates", role: "admin" };
const systemContext = (): AuditContext => ({ actor: SYSTEM, requestId: crypto.randomUUID() });

async function resolveRing(db: Db, ring: Ring): Promise<string[]> {
  const live = await db.select({ id: nodes.id, site: nodes.site }).from(nodes).where(isNull(nodes.revokedAt));
  let ids: string[];
  if ("site" in ring) {
    ids = live.filter((n) => n.site === ring.site).map((n) => n.id);
  } else if ("nodes" in ring) {
    const known = new Set(live.map((n) => n.id));
    const missing = ring.nodes.filter((id) => !known.has(id));
    if (missing.length) {
      throw new AppError("VALIDATION_FAILED", `ring.nodes: unknown or revoked node ${missing[0]}`, [
        { path: "ring.nodes", message: `unknown or revoked: ${missing.slice(0, 5).join(", ")}` },
      ]);
    }
    ids = [...new Set(ring.nodes)];
  } else {
    ids = [];
    for (const n of live) if (await inPercentRing(n.id, ring.percent)) ids.push(n.id);
  }
  if (ids.length === 0) {
    throw new AppError("VALIDATION_FAILED", "ring: it holds no node (an empty ring would prove nothing)", [
      { path: "ring", message: "no node" },
    ]);
  }
  if (ids.length > MAX_RING_NODES) {
    throw new AppError("VALIDATION_FAILED", `ring: at most ${MAX_RING_NODES} nodes`, [
      { path: "ring", message: "too many nodes" },
    ]);
  }
  return ids.sort();
}

/** Publishes `policy` as a new version that only the ring gets until the rollout is promoted. */
export async function startRollout(env: Env, input: StartRolloutInput, ctx: AuditContext) {
  const db = getDb(env.DB);
  await checkPolicy(db, input.policy);
  await assertNoActiveRollout(db);
  const from = await latestHead(db);
  const ringNodes = await resolveRing(db, input.ring);
  const gates = { ...DEFAULT_GATES, ...input.gates };
  const row: RolloutRow = {
    id: newId("ro"),
    state: "pending",
    fromVersion: from?.version ?? null,
    fromHash: from?.hash ?? null,
    fromGeneration: from?.generation ?? null,
    toVersion: null,
    toHash: null,
    ring: input.ring,
    ringNodes,
    soakSeconds: input.soakSeconds,
    gates,
    startedAt: Date.now(),
    startedBy: ctx.actor.id,
    ringAppliedAt: null,
    endedAt: null,
    endedBy: null,
    reason: null,
    rollbackVersion: null,
    figures: null,
  };
  await db.batch([
    db.insert(rollouts).values(row),
    auditInsert(db, ctx, {
      action: "rollout.start",
      target: row.id,
      after: { ring: input.ring, ringNodes: ringNodes.length, soakSeconds: input.soakSeconds, gates, from },
    }),
  ]);
  // The hubs hold every node outside the ring at `from` before the new head exists.
  await announceRollout(env, targetingOf(row));
  try {
    const published = await publishPolicy({
      db,
      seeds: signingSeeds(env),
      actor: ctx,
      input: { policy: input.policy, message: input.message, duringRollout: true },
      notify: async (head) => {
        await db
          .update(rollouts)
          .set({ state: "soaking", toVersion: head.version, toHash: head.hash })
          .where(eq(rollouts.id, row.id));
        await announceVersion(env, head);
      },
    });
    if (published.unchanged)
      throw new AppError("CONFLICT", "the policy equals the latest version: nothing to roll out");
    return { ...row, state: "soaking" as const, toVersion: published.version, toHash: published.hash };
  } catch (error) {
    await db
      .update(rollouts)
      .set({
        state: "halted",
        endedAt: Date.now(),
        endedBy: ctx.actor.id,
        reason: `publish failed: ${(error as Error).message}`,
      })
      .where(eq(rollouts.id, row.id));
    await announceRollout(env, null);
    throw error;
  }
}

/** Moves an active rollout to a final state, once: a concurrent cron and NACK cannot both act. */
async function claim(db: Db, id: string, to: RolloutRow["state"], actor: string, reason: string) {
  const [row] = await db
    .update(rollouts)
    .set({ state: to, endedAt: Date.now(), endedBy: actor, reason })
    .where(and(eq(rollouts.id, id), inArray(rollouts.state, [...ACTIVE_STATES])))
    .returning();
  return row ?? null;
}

export async function getRollout(db: Db, id: string): Promise<RolloutRow> {
  const [row] = await db.select().from(rollouts).where(eq(rollouts.id, id)).limit(1);
  if (!row) throw new AppError("NOT_FOUND", `no rollout ${id}`);
  return row;
}

export async function listRollouts(db: Db, limit = 20) {
  return db.select().from(rollouts).orderBy(desc(rollouts.startedAt)).limit(limit);
}

/** Every node gets the rollout's version now. */
export async function promoteRollout({
  env,
  id,
  ctx,
  reason = "promoted by hand",
}: {
  env: Env;
  id: string;
  ctx: AuditContext;
  reason?: string;
}) {
  const db = getDb(env.DB);
  const current = await getRollout(db, id);
  if (current.state !== "soaking") {
    throw new AppError(
      "CONFLICT",
      `rollout ${id} is ${current.state}: only a soaking rollout can be promoted`,
    );
  }
  const row = await claim(db, id, "promoted", ctx.actor.id, reason);
  if (!row) throw new AppError("CONFLICT", `rollout ${id} ended meanwhile`);
  await auditInsert(db, ctx, {
    action: "rollout.promote",
    target: id,
    after: { reason, figures: row.figures },
  });
  await announceRollout(env, null);
  return row;
}

/** Republishes the version before the rollout as a new one (nodes refuse a lower version number). */
async function republishFrom(env: Env, row: RolloutRow, ctx: AuditContext): Promise<number | null> {
  if (row.fromVersion === null) return null;
  const db = getDb(env.DB);
  const previous = await getVersion(db, row.fromVersion);
  const published = await publishPolicy({
    db,
    seeds: signingSeeds(env),
    actor: ctx,
    input: {
      policy: previous.policy,
      message: `Rollout ${row.id}: back to version ${row.fromVersion}`,
      rollbackOf: row.fromVersion,
      duringRollout: true,
    },
    notify: (head: PolicyHead) => announceVersion(env, head),
  });
  await db.update(rollouts).set({ rollbackVersion: published.version }).where(eq(rollouts.id, row.id));
  return published.version;
}

/**
 * Stops a soaking rollout: the ring goes back to the previous version (republished as a new
 * version with the same content) and the held nodes keep it.
 */
export async function haltRollout({
  env,
  id,
  reason,
  ctx,
}: {
  env: Env;
  id: string;
  reason: string;
  ctx: AuditContext;
}) {
  const db = getDb(env.DB);
  const row = await claim(db, id, "halted", ctx.actor.id, reason);
  if (!row) {
    const current = await getRollout(db, id);
    throw new AppError("CONFLICT", `rollout ${id} is ${current.state}: only an active rollout can be halted`);
  }
  await auditInsert(db, ctx, { action: "rollout.halt", target: id, after: { reason, figures: row.figures } });
  // While the hubs still hold the targeting, ring and held nodes both get the previous content.
  const rollbackVersion = await republishFrom(env, row, ctx);
  await announceRollout(env, null);
  // Settings → Alerts: whoever watches the fleet hears of it; a failed delivery does not undo the halt.
  await fireAlert({
    db,
    env,
    kind: "rollout.halted",
    subject: id,
    summary: `Rollout ${id} halted: ${reason}`.slice(0, 500),
    details: { reason, toVersion: row.toVersion, rollbackVersion, figures: row.figures },
  }).catch((error) => console.error(JSON.stringify({ rolloutAlertFailed: id, error: String(error) })));
  return { ...row, rollbackVersion };
}

/** After a promotion (or instead of a halt): the whole fleet goes back to the version before the rollout. */
export async function rollBackRollout(env: Env, id: string, ctx: AuditContext) {
  const db = getDb(env.DB);
  const current = await getRollout(db, id);
  if (current.state === "soaking" || current.state === "pending") {
    return haltRollout({ env, id, reason: "rolled back by hand", ctx });
  }
  if (current.state !== "promoted") {
    throw new AppError("CONFLICT", `rollout ${id} is ${current.state}: nothing to roll back`);
  }
  await assertNoActiveRollout(db);
  const head = await latestHead(db);
  if (head?.version !== current.toVersion) {
    throw new AppError(
      "CONFLICT",
      `version ${head?.version} was published after this rollout: roll that back instead`,
    );
  }
  const [row] = await db
    .update(rollouts)
    .set({ state: "rolled-back", endedAt: Date.now(), endedBy: ctx.actor.id, reason: "rolled back by hand" })
    .where(and(eq(rollouts.id, id), eq(rollouts.state, "promoted")))
    .returning();
  if (!row) throw new AppError("CONFLICT", `rollout ${id} changed meanwhile`);
  await auditInsert(db, ctx, { action: "rollout.rollback", target: id });
  const rollbackVersion = await republishFrom(env, row, ctx);
  return { ...row, rollbackVersion };
}

/**
 * The gate check (cron, and each NACK): records the figures, marks the ring applied when every
 * online ring node runs the new version, then promotes after the soak or halts on a failed gate.
 */
export async function evaluateRollouts(env: Env, now = Date.now()) {
  const db = getDb(env.DB);
  const row = await activeRollout(db);
  if (row?.state !== "soaking") return null;
  let current = row;
  if (row.ringAppliedAt === null) {
    const first = await gateFigures(env, row, now);
    if (first.ringOnline > 0 && first.ringApplied >= first.ringOnline) {
      current = { ...row, ringAppliedAt: now };
      await db.batch([
        db.update(rollouts).set({ ringAppliedAt: now }).where(eq(rollouts.id, row.id)),
        auditInsert(db, systemContext(), {
          action: "rollout.ring-applied",
          target: row.id,
          after: { ringApplied: first.ringApplied, ringOnline: first.ringOnline, ringSize: first.ringSize },
        }),
      ]);
    }
  }
  const figures = await gateFigures(env, current, now);
  await db.update(rollouts).set({ figures }).where(eq(rollouts.id, row.id));
  if (figures.verdict === "halt") {
    return haltRollout({ env, id: row.id, reason: figures.reason!, ctx: systemContext() }).catch(ignoreRaced);
  }
  if (figures.verdict === "promote") {
    return promoteRollout({ env, id: row.id, ctx: systemContext(), reason: figures.reason! }).catch(
      ignoreRaced,
    );
  }
  return { ...current, figures };
}

/** Another evaluation (cron and a NACK at once) or an admin acted first: nothing left to do. */
function ignoreRaced(error: unknown) {
  if (error instanceof AppError && error.code === "CONFLICT") return null;
  throw error;
}

/** The status route's hook: a NACK from a node is checked against the gates at once. */
export async function onNodeReport(env: Env, nodeId: string, state: "applied" | "rejected") {
  if (state !== "rejected") return;
  try {
    const db = getDb(env.DB);
    const row = await activeRollout(db);
    if (row?.state === "soaking" && row.ringNodes.includes(nodeId)) await evaluateRollouts(env);
  } catch (error) {
    // The cron evaluates again; a failed check must not fail the node's report.
    console.error(JSON.stringify({ rolloutCheckFailed: String(error), nodeId }));
  }
}
