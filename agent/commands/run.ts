import {
  type Command,
  EXIT_FAILURE,
  EXIT_OK,
  type ListenAddress,
  parseFlags,
  parseListen,
  STATE_DIR_HELP,
  UsageError,
} from "../cli-kit";
import { systemClock } from "../clock";
import { EventLog } from "../events";
import { MasterClient } from "../master/client";
import { createAgentMetrics } from "../metrics/agent-metrics";
import { checkMetricsListen, listenMetrics, type MetricsListener } from "../metrics/listener";
import { NodeSite, readSiteFile } from "../node-site";
import type { ProxyDriver } from "../proxy/types";
import { nodeSpoolSettings, startSpooling } from "../spool/index";
import { acquireRunLock, type RunLock, RunLockHeld } from "../state/run-lock";
import type { NodeConfig, RuntimeState } from "../state/schemas";
import { resolveStateDir, StateDir, StateFileError } from "../state/state-dir";
import { startBundleWorker } from "../sync/bundle-worker";
import { compileWithEngine } from "../sync/compile";
import { SyncLoop } from "../sync/loop";
import { prepareInThread } from "../sync/prepare";
import type { SyncSnapshot } from "../sync/types";
import { AGENT_VERSION } from "../version";

const STOP_DEADLINE_MS = 10_000;
// After the proxy has stopped: seal what is left and try to upload it, then exit; the rest waits on disk.
const SPOOL_STOP_DEADLINE_MS = 5_000;

export const runCommand: Command = {
  name: "run",
  summary: "run the proxy and keep its policy in sync with the master",
  usage: `Usage: fleetgate-agent run [--state-dir DIR] [--metrics-listen HOST:PORT [--metrics-allow-remote]]

Starts the proxy on the enrolled listen address, enforces the cached policy at once, then
long-polls the master for signed policy updates. Logs JSON lines to stderr and events.log.
Stops gracefully on SIGTERM or SIGINT.

Options:
${STATE_DIR_HELP}
  --metrics-listen HOST:PORT   serve Prometheus metrics at http://HOST:PORT/metrics (off by
                    default; config.json metrics.listen); loopback only unless
  --metrics-allow-remote       is given (or metrics.allowRemote is true)
  -h, --help        show this help`,

  async run(args, io) {
    const flags = parseFlags(args, {
      "state-dir": { type: "string" },
      "metrics-listen": { type: "string" },
      "metrics-allow-remote": { type: "boolean" },
    });
    if (!flags) {
      io.out(`${this.usage}\n`);
      return EXIT_OK;
    }
    const state = new StateDir(resolveStateDir(flags["state-dir"], io.env));
    let config: NodeConfig | null;
    try {
      config = await state.readConfig();
    } catch (error) {
      if (!(error instanceof StateFileError)) throw error;
      // E.g. a spool or proxy setting out of range: name the field and stop before anything starts.
      io.err(
        `cannot start: ${error.message}\nFix the value in config.json (docs/spool.md lists the spool settings, docs/proxy.md the proxy's).\n`,
      );
      return EXIT_FAILURE;
    }
    const credentials = await state.readCredentials();
    if (!config?.nodeId || !credentials) {
      io.err(
        `not enrolled (state dir ${state.root}): run fleetgate-agent enroll --master URL --key KEY first\n`,
      );
      return EXIT_FAILURE;
    }
    // A bad metrics address stops the start before anything is opened, like any bad setting.
    const metricsValue = flags["metrics-listen"] ?? config.metrics?.listen;
    let metricsAt: ListenAddress | null = null;
    if (metricsValue) {
      try {
        metricsAt = parseListen(metricsValue);
        checkMetricsListen(
          metricsAt,
          flags["metrics-allow-remote"] === true || config.metrics?.allowRemote === true,
        );
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        io.err(`cannot start: ${error.message.replace("--listen", "--metrics-listen")}\n`);
        return EXIT_FAILURE;
      }
    }
    await state.ensure();
    // Before the spool is opened: a second agent on the same state dir must not touch it.
    let lock: RunLock;
    try {
      lock = await acquireRunLock(state.root);
    } catch (error) {
      if (!(error instanceof RunLockHeld)) throw error;
      io.err(
        `cannot start: ${error.message}\nOne agent per state dir: stop that one first (systemctl stop fleetgate-agent, or kill ${error.owner.pid}), or give this one its own --state-dir.\n`,
      );
      return EXIT_FAILURE;
    }
    const events = new EventLog({ file: state.eventsPath, stderr: (line) => io.err(line) });
    const clock = systemClock;
    // The node's site (signed by the master): set on every policy, moved by poll answers.
    const nodeSite = new NodeSite(await readSiteFile(state.root), {
      nodeId: config.nodeId ?? "",
      stateDir: state.root,
      trusted: async () => {
        const now = (await state.readCredentials()) ?? credentials;
        return now.nextMasterKey ? [now.masterKey, now.nextMasterKey] : [now.masterKey];
      },
      events,
    });
    // One client for the master: the sync loop and the spool uploader share its URL, token and user agent.
    const master = new MasterClient({
      fetch: nodeSite.wrapFetch(globalThis.fetch),
      masterUrl: config.masterUrl,
      nodeToken: credentials.nodeToken,
      agentVersion: AGENT_VERSION,
      now: () => clock.now(),
    });
    // Opened (and recovered) before the proxy starts, so every access-log record lands in it.
    const spool = await startSpooling({
      stateDir: state.root,
      master,
      clock,
      random: Math.random,
      events,
      // config.json's spool block, the FLEETGATE_SPOOL_* environment on top.
      settings: nodeSpoolSettings(config.spool, io.env, (message) =>
        events.emit("spool.setting_ignored", { level: "warn", message }),
      ),
    });
    const proxyRef: { current: ProxyDriver | null } = { current: null };
    const metrics = createAgentMetrics({
      clock,
      driver: () => proxyRef.current,
      spool: () => ({ ...spool.sink.figures(), pendingRecords: spool.sink.pendingRecords() }),
    });
    // Every access-log record is counted on its way into the spool (the Squid driver's too).
    const sink = metrics.countingSink(spool.sink);
    const { host, port } = parseListen(config.listen);
    // driver "squid": the node's Squid carries the traffic, the agent decides (docs/squid.md).
    const squid = config.driver === "squid" ? await import("../proxy/squid/from-config") : null;
    // Loaded lazily: the proxy is Bun-only and the other commands must not pay for it.
    // config.json's proxy block: limits and timeouts, the defaults for any key left out.
    const driver: ProxyDriver = squid
      ? squid.squidDriverFor(config, state.root, spool.sink, events, sink)
      : (await import("../proxy/builtin/index")).createBuiltinProxy({
          ...config.proxy,
          host,
          port,
          sink,
          events,
        });

    proxyRef.current = driver;

    const startedAt = new Date().toISOString();
    const writeRuntime = runtimeWriter(state, (snapshot) => ({
      pid: process.pid,
      startedAt,
      updatedAt: new Date().toISOString(),
      ...snapshot,
      listen: driver.listenAddress(),
      proxyKind: driver.kind,
      proxyVersion: driver.version(),
      spool: spool.figures(),
    }));
    const loop = new SyncLoop({
      master,
      masterKey: credentials.masterKey,
      nextMasterKey: credentials.nextMasterKey,
      pollWaitSeconds: config.pollWaitSeconds,
      clock,
      random: Math.random,
      store: state,
      driver: nodeSite.wrapDriver(driver),
      events,
      compile: squid ? squid.compileForSquid : compileWithEngine,
      // Parse, verify and compile a downloaded bundle off the event loop the proxy runs on.
      prepare: squid
        ? undefined
        : (startBundleWorker(prepareInThread(compileWithEngine), (error) =>
            events.emit("sync.worker_failed", { level: "error", error, fallback: "in-thread" }),
          ) ?? undefined),
      spoolFigures: () => spool.figures(),
      onApplied: (applied) => metrics.policyApplied(applied),
      onSyncFailure: (what) => metrics.syncFailed(what),
      onState: writeRuntime,
      // The master answered: uploads waiting out an outage backoff go now (at the drain rate).
      onMasterContact: () => spool.nudge(),
    });
    // A drained backlog, a quarantined chunk or a drop reaches the master within seconds, not a minute.
    spool.onFiguresChange(() => loop.spoolChanged());

    events.emit("agent.starting", {
      version: AGENT_VERSION,
      nodeId: config.nodeId,
      master: config.masterUrl,
      stateDir: state.root,
    });
    // Listening for the stop signals before anything starts: a SIGTERM while the proxy or the
    // metrics port is coming up (systemd stopping a unit that just started) still stops gracefully
    // instead of killing the process with the default action.
    const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
      process.once("SIGTERM", () => resolve("SIGTERM"));
      process.once("SIGINT", () => resolve("SIGINT"));
    });
    // The cached policy goes in before the port opens, so no request is ever judged without it.
    await loop.restoreFromCache();
    try {
      await driver.start();
    } catch (error) {
      events.emit("proxy.failed", { listen: config.listen, error: (error as Error).message });
      io.err(`cannot start the proxy on ${config.listen}: ${(error as Error).message}\n`);
      await lock.release();
      return EXIT_FAILURE;
    }
    let metricsListener: MetricsListener | null = null;
    if (metricsAt) {
      try {
        metricsListener = await listenMetrics(metricsAt, () => metrics.render());
        events.emit("metrics.listening", { listen: metricsListener.address });
      } catch (error) {
        // The proxy is up and enforcing: a taken metrics port is worth a loud line, not an outage.
        events.emit("metrics.failed", {
          level: "error",
          listen: metricsValue,
          error: (error as Error).message,
        });
      }
    }
    writeRuntime(loop.snapshot());

    const stop = new AbortController();
    const looping = loop.run(stop.signal);
    const signal = await stopSignal;
    events.emit("shutdown", { signal, deadlineMs: STOP_DEADLINE_MS });
    stop.abort();
    await looping;
    await driver.stop(STOP_DEADLINE_MS);
    await metricsListener?.close();
    await spool.stop(SPOOL_STOP_DEADLINE_MS);
    await writeRuntime.flush();
    events.emit("stopped", { signal });
    await lock.release();
    return EXIT_OK;
  },
};

/** Coalesces runtime.json writes: at most one in flight, the newest snapshot wins. */
function runtimeWriter(state: StateDir, build: (snapshot: SyncSnapshot) => RuntimeState) {
  let latest: SyncSnapshot | null = null;
  let writing: Promise<void> | null = null;
  const drain = async () => {
    while (latest) {
      const next = build(latest);
      latest = null;
      await state.writeRuntime(next).catch(() => undefined);
    }
    writing = null;
  };
  const write = (snapshot: SyncSnapshot) => {
    latest = snapshot;
    writing ??= drain();
  };
  write.flush = async () => {
    await writing;
  };
  return write;
}
