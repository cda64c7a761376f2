// The Squid driver: the node's own Squid carries the traffic, the agent decides and reports.
// docs/squid.md is the user-facing side.
//
//   Squid ──stdin/stdout──▶ helper (this binary, squid-helper) ──unix socket──▶ DecisionServer
//   Squid ──access log file──▶ SquidLogReader ──▶ spool
//
// A policy change swaps the compiled policy the DecisionServer answers from; Squid is not touched.
// The include file is rewritten (after `squid -k parse` accepts it) and Squid reconfigured only
// when the include's text changes: the realm, or the node's own settings.

import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { AccessLogSink, EventLogger } from "../../ports";
import { writeFileAtomic } from "../../state/atomic-write";
import { createRequestIds } from "../builtin/request-id";
import type { ActivePolicy, ProxyDriver } from "../types";
import { DecisionServer } from "./decision-server";
import { pagePath, renderInclude, renderPageTemplate } from "./include";
import { SquidLogReader } from "./log-reader";
import type { SquidSettings } from "./settings";
import { parseCandidate, reconfigure, squidVersion } from "./squid-ctl";

export interface SquidDriverOptions {
  settings: SquidSettings;
  /** Squid's listen address as enrolled (Squid's http_port; informational for status). */
  listen: string;
  sink: AccessLogSink;
  /** Makes sink writes durable before the log cursor moves (the disk spool's flush). */
  durable?: () => Promise<void>;
  events: EventLogger;
}

export interface SquidDriver extends ProxyDriver {
  readonly server: DecisionServer;
  readonly reader: SquidLogReader;
  /** Times Squid was reconfigured by this driver. */
  reconfigures(): number;
}

const DEFAULT_REALM = "Fleetgate";

export function createSquidDriver(o: SquidDriverOptions): SquidDriver {
  const { settings, events } = o;
  let current: ActivePolicy | null = null;
  let started = false;
  let version = "squid";
  let reconfigured = 0;
  // One include change at a time: applyPolicy calls arrive in order from the sync loop.
  let includeChain: Promise<void> = Promise.resolve();

  const server = new DecisionServer({
    socketPath: settings.socketPath,
    group: settings.socketGroup,
    events,
    current: () => current,
    nextRequestId: createRequestIds(),
  });
  const reader = new SquidLogReader({
    logPath: settings.accessLogPath,
    cursorPath: path.join(settings.stateDir, "log-cursor.json"),
    sink: o.sink,
    durable: o.durable,
    includeQuery: () => current?.compiled.includeQuery ?? false,
    events,
    pollMs: settings.logPollMs,
  });

  async function writeIfChanged(file: string, text: string): Promise<boolean> {
    const existing = await readFile(file, "utf8").catch(() => null);
    if (existing === text) return false;
    await writeFileAtomic(file, text, { mode: 0o644 });
    return true;
  }

  /** Validates, writes and loads the include for this realm; throws Squid's complaint on a refusal. */
  async function ensureInclude(realm: string): Promise<void> {
    const text = renderInclude(settings, realm);
    const existing = await readFile(settings.includePath, "utf8").catch(() => null);
    if (existing === text) return;
    const parsed = await parseCandidate(settings, text);
    if (!parsed.ok) {
      events.emit("squid.include_rejected", { level: "error", error: parsed.error });
      throw new Error(parsed.error);
    }
    await writeFileAtomic(settings.includePath, text, { mode: 0o644 });
    const done = await reconfigure(settings);
    if (done.ok) reconfigured++;
    // No Squid running yet is fine: it loads the include when it starts.
    events.emit(done.ok ? "squid.reconfigured" : "squid.reconfigure_failed", {
      level: done.ok ? "info" : "warn",
      include: settings.includePath,
      ...(done.ok ? {} : { error: done.error }),
    });
  }

  function queueInclude(realm: string): Promise<void> {
    const next = includeChain.then(() => ensureInclude(realm));
    includeChain = next.catch(() => undefined);
    return next;
  }

  return {
    kind: "squid",
    server,
    reader,
    reconfigures: () => reconfigured,

    async start() {
      if (started) return;
      await mkdir(settings.stateDir, { recursive: true });
      version = `squid ${(await squidVersion(settings.binary)) ?? "unknown"}`;
      // The socket listens before Squid (re)starts its helpers, so their first connect succeeds.
      await server.start();
      await writeIfChanged(pagePath(settings), renderPageTemplate());
      try {
        await queueInclude(current?.compiled.realm ?? DEFAULT_REALM);
      } catch (error) {
        await server.stop();
        throw error;
      }
      await reader.start();
      started = true;
      events.emit("proxy.listening", { listen: o.listen, driver: "squid", include: settings.includePath });
    },

    async applyPolicy(policy) {
      // Before start() the include is written by start() itself, with this policy's realm.
      if (started && policy !== null) await queueInclude(policy.compiled.realm);
      current = policy;
      events.emit("proxy.policy_applied", { version: policy?.version ?? null, hash: policy?.hash ?? null });
    },

    async stop() {
      if (!started) return;
      started = false;
      // The include stays: Squid keeps running and, with the helper's agent gone, refuses everything.
      await reader.stop();
      await server.stop();
      events.emit("proxy.stopped", { driver: "squid" });
    },

    listenAddress: () => o.listen,
    version: () => version,
  };
}
