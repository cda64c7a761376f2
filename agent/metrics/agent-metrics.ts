// The node's metrics (docs/agent.md, Metrics). Request, byte and upstream-error counts come from
// the access-log records every request leaves (`countingSink`), so the Squid driver, whose log the
// agent reads, exports the same counters as the built-in proxy; connections and tunnels only where
// the driver can see them (built-in).
import type { LogRecord, SpoolFigures } from "../../protocol/wire";
import type { AccessLogSink, Clock } from "../ports";
import type { ProxyDriver } from "../proxy/types";
import { Registry } from "./registry";

const ACTIONS: LogRecord["action"][] = ["allow", "block", "auth", "error"];

export interface AgentMetrics {
  /** Wraps the access-log sink: every record is counted, then written on. */
  countingSink<S extends AccessLogSink>(sink: S): AccessLogSink;
  policyApplied(applied: { version: number; durationMs: number }): void;
  syncFailed(what: "poll" | "status"): void;
  render(): string;
}

export function createAgentMetrics(o: {
  clock: Clock;
  driver: () => ProxyDriver | null;
  spool: () => (SpoolFigures & { pendingRecords: number }) | null;
}): AgentMetrics {
  const r = new Registry();
  // Every series the request path touches is bound once here: a record costs a few Map updates.
  r.counter(
    "fleetgate_proxy_requests_total",
    "Requests and tunnels the proxy finished, by the action taken.",
  );
  const requests = Object.fromEntries(
    ACTIONS.map((action) => [action, r.series("fleetgate_proxy_requests_total", { action })]),
  ) as Record<LogRecord["action"], (by?: number) => void>;
  r.counter(
    "fleetgate_proxy_received_bytes_total",
    "Bytes received from clients (request bodies, tunnel payload).",
  );
  const bytesIn = r.series("fleetgate_proxy_received_bytes_total");
  r.counter("fleetgate_proxy_sent_bytes_total", "Bytes sent to clients (response bodies, tunnel payload).");
  const bytesOut = r.series("fleetgate_proxy_sent_bytes_total");
  r.counter(
    "fleetgate_proxy_upstream_errors_total",
    "Requests that failed on the origin side: unreachable, timed out or a bad answer (502/504).",
  );
  const upstreamErrors = r.series("fleetgate_proxy_upstream_errors_total");
  r.gauge("fleetgate_proxy_active_connections", "Client connections open now (built-in proxy).", () => {
    return o.driver()?.activity?.().connections ?? null;
  });
  r.gauge("fleetgate_proxy_active_tunnels", "CONNECT and upgraded tunnels open now (built-in proxy).", () => {
    return o.driver()?.activity?.().tunnels ?? null;
  });

  let applied: { version: number; at: number; seconds: number } | null = null;
  r.gauge(
    "fleetgate_policy_version",
    "Version of the policy the proxy enforces (absent while failing closed).",
    () => (applied ? applied.version : null),
  );
  r.gauge(
    "fleetgate_policy_last_apply_timestamp_seconds",
    "When the enforced policy was applied (Unix time).",
    () => (applied ? applied.at / 1000 : null),
  );
  r.gauge(
    "fleetgate_policy_last_apply_duration_seconds",
    "How long the proxy took to take the last policy.",
    () => (applied ? applied.seconds : null),
  );

  const spool = (pick: (f: SpoolFigures & { pendingRecords: number }) => number | null) => () => {
    const figures = o.spool();
    return figures ? pick(figures) : null;
  };
  r.gauge(
    "fleetgate_spool_pending_chunks",
    "Sealed log chunks waiting for upload.",
    spool((f) => f.pendingChunks),
  );
  r.gauge(
    "fleetgate_spool_pending_bytes",
    "Bytes of access log waiting for upload.",
    spool((f) => f.pendingBytes),
  );
  r.gauge(
    "fleetgate_spool_pending_records",
    "Access-log records waiting for upload.",
    spool((f) => f.pendingRecords),
  );
  r.gauge(
    "fleetgate_spool_oldest_pending_age_seconds",
    "Age of the oldest record waiting for upload (0 when none).",
    spool((f) =>
      f.oldestPendingAt ? Math.max(0, (o.clock.now() - Date.parse(f.oldestPendingAt)) / 1000) : 0,
    ),
  );
  r.gauge(
    "fleetgate_spool_dropped_records_total",
    "Records dropped at the spool quota since the spool was created (kept across restarts).",
    spool((f) => f.droppedRecords),
    "counter",
  );
  r.counter(
    "fleetgate_sync_failures_total",
    "Policy polls and status reports to the master that failed, by kind.",
  );
  const syncFailures = {
    poll: r.series("fleetgate_sync_failures_total", { kind: "poll" }),
    status: r.series("fleetgate_sync_failures_total", { kind: "status" }),
  };

  return {
    countingSink(sink) {
      return {
        write(record) {
          requests[record.action]();
          bytesIn(record.bytesIn);
          bytesOut(record.bytesOut);
          if (
            record.action === "error" &&
            (record.status === 0 || record.status === 502 || record.status === 504)
          )
            upstreamErrors();
          sink.write(record);
        },
      };
    },
    policyApplied({ version, durationMs }) {
      applied = { version, at: o.clock.now(), seconds: durationMs / 1000 };
    },
    syncFailed(kind) {
      syncFailures[kind]();
    },
    render: () => r.render(),
  };
}
