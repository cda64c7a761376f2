import { rm, statfs } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import { verifyBundle } from "../../protocol/signing";
import { PolicyBundle } from "../../protocol/wire";
import { ago, parseListen } from "../cli-kit";
import { describeSpool, formatBytes } from "../spool/describe";
import { readSpoolFigures } from "../spool/read-figures";
import { DEFAULT_SPOOL_SETTINGS } from "../spool/settings";
import { writeFileAtomic } from "../state/atomic-write";
import { ownerAlive, readRunLock } from "../state/run-lock";
import { trustedKeys } from "../state/schemas";
import type { StateDir } from "../state/state-dir";
import { compileWithEngine } from "../sync/compile";
import type { CheckResult, DoctorContext } from "./result";

/** The oldest record still waiting for upload: older than this means uploads are stuck. */
export const BACKLOG_WARN_MS = 10 * 60_000;
export const BACKLOG_FAIL_MS = 60 * 60_000;

/** Is a `run` holding this state dir's lock? Without one nothing enforces or uploads. */
export async function checkRunning(ctx: DoctorContext): Promise<CheckResult> {
  const name = "agent running";
  const owner = await readRunLock(ctx.state.root).catch(() => null);
  if (owner && (await ownerAlive(owner))) {
    return { name, status: "ok", detail: `pid ${owner.pid}, since ${owner.startedAt}` };
  }
  return {
    name,
    status: "fail",
    detail: owner ? `not running (pid ${owner.pid} is gone; it left its lock behind)` : "not running",
    hint: "start it: systemctl start fleetgate-agent (why it stopped: journalctl -u fleetgate-agent)",
  };
}

/**
 * The running agent's own account (runtime.json) and the master's answer to its applied hash: a
 * refused bundle, a fail-closed proxy, or a master holding a newer policy than the node enforces.
 */
export function checkEnforcing(ctx: DoctorContext, token: CheckResult): CheckResult {
  const name = "enforcing the master's latest policy";
  const runtime = ctx.runtime;
  if (!runtime) return { name, status: "warn", detail: "no runtime.json yet", hint: "wait a few seconds" };
  const applied = runtime.appliedVersion === null ? "nothing" : `v${runtime.appliedVersion}`;
  if (runtime.lastRefusal) {
    return {
      name,
      status: "fail",
      detail: `refusing the master's policy (enforcing ${applied}): ${runtime.lastRefusal}`,
      hint: "the reason says what to fix: a policy this agent cannot compile (upgrade the agent), a key it does not trust (re-enroll), or a master restored from a backup (POST /api/v1/policy/series)",
    };
  }
  if (runtime.enforcing === "fail-closed") {
    return {
      name,
      status: "fail",
      detail: "no policy applied: the proxy refuses all traffic",
      hint: "publish a policy on the master, and check the token and network checks above",
    };
  }
  if (token.status === "ok" && token.detail.startsWith("policy served")) {
    return {
      name,
      status: "fail",
      detail: `behind: the master has a newer policy (${token.detail.replace(/^policy served \(200\)(: )?/, "") || "another bundle"}) than the ${applied} this node enforces`,
      hint: `if it persists, see the policy.rejected and sync.failed events in ${ctx.state.eventsPath}`,
    };
  }
  return { name, status: "ok", detail: `${applied}, the master's latest` };
}

export function judgeDisk(root: string, free: number, total: number): CheckResult {
  const name = `disk space for ${root}`;
  const share = total > 0 ? free / total : 1;
  const detail = `${formatBytes(free)} free of ${formatBytes(total)} (${Math.round(share * 100)}%)`;
  const hint =
    "free space on this file system: the spool drops the oldest records at its quota, but a full disk also stops last-good and status writes";
  if (free < 100 * 1024 * 1024 || share < 0.05) return { name, status: "fail", detail, hint };
  if (share < 0.1) return { name, status: "warn", detail, hint };
  return { name, status: "ok", detail };
}

export async function checkDisk(root: string): Promise<CheckResult> {
  try {
    const stats = await statfs(root);
    return judgeDisk(root, stats.bavail * stats.bsize, stats.blocks * stats.bsize);
  } catch (error) {
    return { name: `disk space for ${root}`, status: "skip", detail: `statfs failed: ${String(error)}` };
  }
}

export async function checkListen(ctx: DoctorContext): Promise<CheckResult> {
  const { host, port } = parseListen(ctx.config.listen);
  const name = `proxy port ${ctx.config.listen}`;
  const free = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) => resolve(error));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(null)));
  });
  if (!free) return { name, status: "ok", detail: "free (the agent is not running)" };
  if (free.code === "EADDRINUSE") {
    if (ctx.runtime?.listen && processAlive(ctx.runtime.pid)) {
      return { name, status: "ok", detail: `held by this agent (pid ${ctx.runtime.pid})` };
    }
    return {
      name,
      status: "fail",
      detail: "in use by another process",
      hint: `find it with: ss -ltnp 'sport = :${port}'`,
    };
  }
  if (free.code === "EACCES") {
    return {
      name,
      status: "fail",
      detail: "permission denied",
      hint: "ports below 1024 need CAP_NET_BIND_SERVICE: install deploy/fleetgate-agent.service.d/low-port.conf (docs/agent.md)",
    };
  }
  return {
    name,
    status: "fail",
    detail: free.code ?? free.message,
    hint: "check --listen: the address must exist on this host",
  };
}

export async function checkWritable(state: StateDir): Promise<CheckResult> {
  const name = `state dir ${state.root} writable`;
  const probe = path.join(state.root, ".doctor-probe");
  try {
    await writeFileAtomic(probe, "ok\n");
    await rm(probe, { force: true });
    return { name, status: "ok", detail: "atomic write works" };
  } catch (error) {
    return {
      name,
      status: "fail",
      detail: (error as NodeJS.ErrnoException).code ?? String(error),
      hint: "run as the agent's user (fleetgate) or fix ownership: chown -R fleetgate: <state dir>",
    };
  }
}

export async function checkCachedPolicy(ctx: DoctorContext): Promise<CheckResult> {
  const name = "cached policy present and verifying";
  const raw = await ctx.state.loadLastGood().catch(() => null);
  if (raw === null) {
    return {
      name,
      status: "warn",
      detail: "no cached policy",
      hint: "the proxy fails closed until the master sends one: publish a policy",
    };
  }
  const parsed = PolicyBundle.safeParse(raw);
  if (!parsed.success)
    return {
      name,
      status: "fail",
      detail: "last-good.json is not a policy bundle",
      hint: "delete it; the agent fetches a fresh one",
    };
  if (!ctx.credentials) return { name, status: "fail", detail: "no pinned master key", hint: "re-enroll" };
  const verified = await verifyBundle(parsed.data, trustedKeys(ctx.credentials));
  if (!verified.ok) {
    return {
      name,
      status: "fail",
      detail: `v${parsed.data.version}: ${verified.reason}`,
      hint: "the file was changed on disk: delete it and restart the agent",
    };
  }
  const compiled = compileWithEngine(parsed.data.policy);
  if (!compiled.ok)
    return { name, status: "fail", detail: compiled.error, hint: "upgrade the agent to match the master" };
  return {
    name,
    status: "ok",
    detail: `v${parsed.data.version} verifies with key ${verified.kid}`,
  };
}

/** Warns about what the spool lost or set aside: dropped records and quarantined chunks. */
export async function checkSpool(ctx: Pick<DoctorContext, "state" | "config">): Promise<CheckResult> {
  const name = "log spool";
  const dir = path.join(ctx.state.root, "spool");
  let figures: Awaited<ReturnType<typeof readSpoolFigures>>;
  try {
    figures = await readSpoolFigures(dir);
  } catch (error) {
    return {
      name,
      status: "fail",
      detail: `${dir} unreadable: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      hint: "run as the agent's user (fleetgate) or fix ownership: chown -R fleetgate: <state dir>",
    };
  }
  const detail = describeSpool(figures, (iso) => ago(iso));
  const hints: string[] = [];
  const quarantined = figures.quarantinedChunks ?? 0;
  if (quarantined > 0) {
    hints.push(
      `${quarantined} chunk(s) the master refused for good are kept in ${path.join(dir, "quarantine")}: ` +
        `the master's reason is in the spool.quarantined events of ${ctx.state.eventsPath} ` +
        "(usually an agent older or newer than the master: upgrade to match). To retry one, stop the agent " +
        "and move it back into spool/sealed/; otherwise delete it (its records are then lost)",
    );
  }
  if (figures.droppedRecords > 0) {
    const quota = ctx.config.spool?.quotaBytes ?? DEFAULT_SPOOL_SETTINGS.quotaBytes;
    hints.push(
      `${figures.droppedRecords} record(s) dropped: the spool reached its disk quota ` +
        `(${formatBytes(quota)} per config.json, unless FLEETGATE_SPOOL_QUOTA_BYTES overrides it) while uploads ` +
        `did not keep up, or the disk itself did not (spool.buffer_full) — check that the master is reachable and accepts uploads (spool.upload_backoff and ` +
        `spool.dropped events in ${ctx.state.eventsPath}), and raise the quota (enroll --spool-quota-mb N, or ` +
        "spool.quotaBytes in config.json) if outages last longer than it holds",
    );
  }
  const backlogMs = figures.oldestPendingAt ? Date.now() - Date.parse(figures.oldestPendingAt) : 0;
  const stuck = backlogMs >= BACKLOG_FAIL_MS;
  if (backlogMs >= BACKLOG_WARN_MS) {
    hints.unshift(
      `the oldest record waiting for upload is ${Math.round(backlogMs / 60_000)} min old: uploads are not getting through ` +
        `(is the agent running? spool.upload_backoff and spool.quarantined events in ${ctx.state.eventsPath}; the token and network checks above)`,
    );
  }
  if (hints.length === 0) return { name, status: "ok", detail };
  return { name, status: stuck ? "fail" : "warn", detail, hint: hints.join("\n    fix: ") };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
