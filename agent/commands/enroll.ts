import { randomUUID } from "node:crypto";
import os from "node:os";
import { verifySiteAssertion } from "../../protocol/site";
import { ProxyKind } from "../../protocol/wire";
import {
  type Command,
  EXIT_FAILURE,
  EXIT_OK,
  formatListen,
  parseFlags,
  parseListen,
  STATE_DIR_HELP,
  UsageError,
} from "../cli-kit";
import { EventLog } from "../events";
import { MasterClient } from "../master/client";
import { writeSiteFile } from "../node-site";
import type { NodeConfig, SpoolConfig } from "../state/schemas";
import { resolveStateDir, StateDir, StateFileError } from "../state/state-dir";
import { AGENT_VERSION } from "../version";

const DEFAULT_LISTEN = "0.0.0.0:3128";
const ENROLL_TIMEOUT_MS = 30_000;

export const enrollCommand: Command = {
  name: "enroll",
  summary: "join this node to a master with an enrollment key",
  usage: `Usage: fleetgate-agent enroll --master URL --key KEY [options]

Registers this node with the master and stores its token and the master's signing key.
Re-enrolling keeps the node's identity (same node id, new token); it sends the current
token as proof. A revoked node, or one whose token is lost, needs an admin to restore it
first (POST /api/v1/nodes/:id/restore).

Options:
  --master URL      master base URL, e.g. https://fleetgate.example.com
  --key KEY         enrollment key from the dashboard or POST /api/v1/enrollment-keys
${STATE_DIR_HELP}
  --listen H:P      address the proxy listens on (default ${DEFAULT_LISTEN}, or the current setting)
  --driver NAME     builtin | squid (default builtin, or the current setting)
  --hostname NAME   name shown on the master (default: this machine's hostname)
  --spool-quota-mb N  disk the log spool may use, in MiB (default 1024, or the current setting);
                    stored in config.json's "spool" block, FLEETGATE_SPOOL_QUOTA_BYTES overrides it
  -h, --help        show this help`,

  async run(args, io) {
    const flags = parseFlags(args, {
      master: { type: "string" },
      key: { type: "string" },
      "state-dir": { type: "string" },
      listen: { type: "string" },
      driver: { type: "string" },
      hostname: { type: "string" },
      "spool-quota-mb": { type: "string" },
    });
    if (!flags) {
      io.out(`${this.usage}\n`);
      return EXIT_OK;
    }
    if (!flags.master) throw new UsageError("--master URL is required");
    if (!flags.key) throw new UsageError("--key KEY is required");
    const masterUrl = parseMasterUrl(flags.master);
    const listen = flags.listen === undefined ? undefined : formatListen(parseListen(flags.listen));
    const driverFlag = flags.driver === undefined ? undefined : ProxyKind.safeParse(flags.driver);
    if (driverFlag && !driverFlag.success)
      throw new UsageError(`--driver must be builtin or squid, got "${flags.driver}"`);

    const quotaMb = flags["spool-quota-mb"] === undefined ? undefined : parseQuotaMb(flags["spool-quota-mb"]);

    const state = new StateDir(resolveStateDir(flags["state-dir"], io.env));
    await state.ensure();
    let previous: NodeConfig | null;
    try {
      previous = await state.readConfig();
    } catch (error) {
      if (!(error instanceof StateFileError)) throw error;
      // Re-enrolling keeps the node's identity from this file: repair it rather than lose it.
      io.err(`${error.message}\nFix the named field in config.json, then enroll again.\n`);
      return EXIT_FAILURE;
    }
    const previousCredentials = await state.readCredentials().catch(() => null);
    const config: NodeConfig = {
      masterUrl,
      listen: listen ?? previous?.listen ?? DEFAULT_LISTEN,
      driver: driverFlag?.data ?? previous?.driver ?? "builtin",
      hostname: flags.hostname?.trim() || previous?.hostname || os.hostname(),
      // Kept across re-enrollment so the master answers with the same node id.
      instanceId: previous?.instanceId ?? `inst-${randomUUID()}`,
      nodeId: previous?.nodeId ?? null,
      pollWaitSeconds: previous?.pollWaitSeconds ?? 25,
      enrolledAt: previous?.enrolledAt ?? null,
      // Node-local like the rest: kept across re-enrollment, the flag changes only the quota.
      ...spoolBlock(previous?.spool, quotaMb),
      ...(previous?.proxy ? { proxy: previous.proxy } : {}),
      ...(previous?.squid ? { squid: previous.squid } : {}),
      ...(previous?.metrics ? { metrics: previous.metrics } : {}),
    };
    // Written before the call: if the answer is lost, a retry re-uses the same instanceId.
    if (!previous) await state.writeConfig(config);

    const master = new MasterClient({
      fetch: globalThis.fetch,
      masterUrl,
      // Proof of identity for the master: only the current token may re-enroll this instance.
      nodeToken: previous ? (previousCredentials?.nodeToken ?? null) : null,
    });
    const result = await master.enroll({
      signal: AbortSignal.timeout(ENROLL_TIMEOUT_MS),
      request: {
        enrollmentKey: flags.key,
        instanceId: config.instanceId,
        hostname: config.hostname,
        agentVersion: AGENT_VERSION,
        proxyKind: config.driver,
      },
    });
    if (!result.ok) {
      io.err(`enroll failed: ${result.message} [${result.code}]\n${enrollHint(result.code, masterUrl)}\n`);
      return EXIT_FAILURE;
    }
    const { enrollment } = result;
    // A different master key means a different master: its cached policy can no longer verify.
    if (previousCredentials && previousCredentials.masterKey.publicKey !== enrollment.masterKey.publicKey) {
      await state.clearLastGood();
    }
    await state.writeCredentials({ nodeToken: enrollment.nodeToken, masterKey: enrollment.masterKey });
    // The site comes signed with the key just pinned; `run` applies it and follows later moves.
    if (
      enrollment.site &&
      (await verifySiteAssertion(enrollment.site, enrollment.nodeId, [enrollment.masterKey]))
    ) {
      await writeSiteFile(state.root, enrollment.site);
    }
    await state.writeConfig({
      ...config,
      nodeId: enrollment.nodeId,
      pollWaitSeconds: enrollment.pollWaitSeconds,
      enrolledAt: new Date().toISOString(),
    });
    new EventLog({ file: state.eventsPath, stderr: null }).emit("enrolled", {
      nodeId: enrollment.nodeId,
      master: masterUrl,
      hostname: config.hostname,
      keyId: enrollment.masterKey.kid,
    });
    io.out(
      [
        `Enrolled node ${enrollment.nodeId} (${config.hostname}) with ${masterUrl}`,
        `  state dir     ${state.root}`,
        `  proxy         ${config.listen} (${config.driver})`,
        `  master key    ${enrollment.masterKey.kid} (pinned)`,
        "Next: fleetgate-agent run   (or: systemctl enable --now fleetgate-agent)",
        "",
      ].join("\n"),
    );
    return EXIT_OK;
  },
};

function parseQuotaMb(value: string): number {
  const mb = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(mb) || mb < 1) {
    throw new UsageError(`--spool-quota-mb must be a whole number of MiB, at least 1, got "${value}"`);
  }
  return mb;
}

function spoolBlock(previous: SpoolConfig | undefined, quotaMb: number | undefined): { spool?: SpoolConfig } {
  if (quotaMb === undefined) return previous ? { spool: previous } : {};
  return { spool: { ...previous, quotaBytes: quotaMb * 1024 * 1024 } };
}

function parseMasterUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--master must be a URL like https://fleetgate.example.com, got "${value}"`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new UsageError("--master must be http:// or https://");
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

function enrollHint(code: string, masterUrl: string): string {
  switch (code) {
    case "ENROLLMENT_KEY_INVALID":
      return "The key is unknown, expired, used up or revoked: create a new one on the master.";
    case "IP_NOT_ALLOWED":
      return "Add this node's address to the master's agent allow list (Settings → Agent allow list).";
    case "CONFLICT":
      return "This instance is already enrolled and the stored token was not accepted: ask an admin to restore the node (POST /api/v1/nodes/:id/restore), then enroll again.";
    case "FORBIDDEN":
      return "This node was revoked: an admin must restore it (POST /api/v1/nodes/:id/restore) before it can enroll again.";
    case "RATE_LIMITED":
      return "Too many enrollment attempts from this address: wait a few minutes.";
    case "UNREACHABLE":
      return `Check that ${masterUrl} resolves and is reachable from this node (DNS, firewall, proxy).`;
    default:
      return `Check the master URL (${masterUrl}) and the master's logs.`;
  }
}
