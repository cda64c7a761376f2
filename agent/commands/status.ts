import path from "node:path";
import { verifyBundle } from "../../protocol/signing";
import { PolicyBundle } from "../../protocol/wire";
import { ago, type Command, EXIT_FAILURE, EXIT_OK, parseFlags, STATE_DIR_HELP } from "../cli-kit";
import { describeSpool } from "../spool/describe";
import { readSpoolFigures } from "../spool/read-figures";
import { trustedKeys } from "../state/schemas";
import { resolveStateDir, StateDir, StateFileError } from "../state/state-dir";

export interface StatusView {
  enrolled: boolean;
  stateDir: string;
  nodeId: string | null;
  hostname: string | null;
  masterUrl: string | null;
  listen: string | null;
  driver: string | null;
  running: boolean;
  pid: number | null;
  enforcing: "policy" | "fail-closed" | "unknown";
  policy: { version: number; hash: string; appliedAt: string | null } | null;
  cachedPolicy: { version: number; hash: string; verifies: boolean; reason?: string } | null;
  master: { state: string; lastContactAt: string | null };
  lastError: string | null;
  lastRefusal: string | null;
  spool: {
    pendingChunks: number;
    pendingBytes: number;
    oldestPendingAt: string | null;
    droppedRecords: number;
    quarantinedChunks?: number;
  };
}

export const statusCommand: Command = {
  name: "status",
  summary: "show what this node enforces and how it talks to the master",
  usage: `Usage: fleetgate-agent status [--state-dir DIR] [--json]

Shows the node id, the master and the last successful contact, the enforced policy version,
the proxy listen address, the last error and the log spool figures.

Options:
${STATE_DIR_HELP}
  --json            machine-readable output
  -h, --help        show this help`,

  async run(args, io) {
    const flags = parseFlags(args, { "state-dir": { type: "string" }, json: { type: "boolean" } });
    if (!flags) {
      io.out(`${this.usage}\n`);
      return EXIT_OK;
    }
    let view: StatusView;
    try {
      view = await readStatus(new StateDir(resolveStateDir(flags["state-dir"], io.env)));
    } catch (error) {
      if (!(error instanceof StateFileError)) throw error;
      io.err(`${error.message}\nFix the named field in config.json, or re-enroll to rewrite it.\n`);
      return EXIT_FAILURE;
    }
    io.out(flags.json ? `${JSON.stringify(view, null, 2)}\n` : formatStatus(view));
    return view.enrolled ? EXIT_OK : EXIT_FAILURE;
  },
};

export async function readStatus(state: StateDir): Promise<StatusView> {
  const config = await state.readConfig();
  const credentials = await state.readCredentials().catch(() => null);
  const runtime = await state.readRuntime().catch(() => null);
  const running = runtime !== null && isAlive(runtime.pid);
  const cachedPolicy = await describeCache(state, credentials ? trustedKeys(credentials) : null);
  const live = running ? runtime : null;
  return {
    enrolled: Boolean(config?.nodeId && credentials),
    stateDir: state.root,
    nodeId: config?.nodeId ?? null,
    hostname: config?.hostname ?? null,
    masterUrl: config?.masterUrl ?? null,
    listen: live?.listen ?? config?.listen ?? null,
    driver: config?.driver ?? null,
    running,
    pid: live?.pid ?? null,
    enforcing: live?.enforcing ?? "unknown",
    policy:
      live && live.appliedVersion !== null && live.appliedHash !== null
        ? { version: live.appliedVersion, hash: live.appliedHash, appliedAt: live.appliedAt }
        : null,
    cachedPolicy,
    master: { state: live?.master ?? "not running", lastContactAt: runtime?.lastContactAt ?? null },
    lastError: runtime?.lastError ?? null,
    lastRefusal: runtime?.lastRefusal ?? null,
    // Read from the spool directory itself: right whether the agent runs or not.
    spool: await readSpoolFigures(path.join(state.root, "spool")).catch(
      () => runtime?.spool ?? { pendingChunks: 0, pendingBytes: 0, oldestPendingAt: null, droppedRecords: 0 },
    ),
  };
}

async function describeCache(
  state: StateDir,
  masterKey: { kid: string; publicKey: string }[] | null,
): Promise<StatusView["cachedPolicy"]> {
  const raw = await state.loadLastGood().catch(() => null);
  if (raw === null) return null;
  const parsed = PolicyBundle.safeParse(raw);
  if (!parsed.success) return { version: 0, hash: "", verifies: false, reason: "not a policy bundle" };
  const { version, hash } = parsed.data;
  if (!masterKey) return { version, hash, verifies: false, reason: "no pinned master key" };
  const verified = await verifyBundle(parsed.data, masterKey);
  return verified.ok
    ? { version, hash, verifies: true }
    : { version, hash, verifies: false, reason: verified.reason };
}

export function formatStatus(view: StatusView, nowMs = Date.now()): string {
  if (!view.enrolled) {
    return `Not enrolled (state dir ${view.stateDir}).\nRun: fleetgate-agent enroll --master URL --key KEY\n`;
  }
  const lines = [
    `Node         ${view.nodeId} (${view.hostname})`,
    `Master       ${view.masterUrl}, ${view.master.state}, last contact ${ago(view.master.lastContactAt, nowMs)}`,
    `Agent        ${view.running ? `running (pid ${view.pid})` : "not running"}, proxy ${view.listen} (${view.driver})`,
  ];
  if (view.running && view.enforcing === "policy" && view.policy) {
    lines.push(
      `Enforcing    policy v${view.policy.version} (${view.policy.hash.slice(0, 12)}…), applied ${view.policy.appliedAt ?? "?"}`,
    );
  } else if (view.running) {
    lines.push(
      "Enforcing    NOTHING: fail closed, the proxy refuses all traffic until a valid policy arrives",
    );
  } else {
    lines.push("Enforcing    nothing (agent not running)");
  }
  const cache = view.cachedPolicy;
  lines.push(
    `Cached       ${
      cache
        ? `v${cache.version} ${cache.verifies ? "verifies with the pinned key" : `DOES NOT VERIFY (${cache.reason})`}`
        : "none"
    }`,
  );
  lines.push(`Last error   ${view.lastError ?? "none"}`);
  if (view.lastRefusal) lines.push(`Refused      ${view.lastRefusal}`);
  lines.push(`Spool        ${describeSpool(view.spool, (iso) => ago(iso, nowMs))}`);
  if ((view.spool.quarantinedChunks ?? 0) > 0 || view.spool.droppedRecords > 0) {
    lines.push("             see: fleetgate-agent doctor");
  }
  return `${lines.join("\n")}\n`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
