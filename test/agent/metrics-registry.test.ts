// The metrics' text exposition on its own: escaping, counters from the access log whatever the
// driver, gauges absent where the driver cannot see them (Squid), parsed by a real parser.
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { createAgentMetrics } from "../../agent/metrics/agent-metrics";
import { Registry } from "../../agent/metrics/registry";
import type { LogRecord } from "../../protocol/wire";
import { FakeClock } from "./fakes/clock";
import { record } from "./fakes/spool";
import { RecordingDriver } from "./fakes/sync";

describe("metrics registry", () => {
  it("escapes label values and help text so a parser reads them back", () => {
    const r = new Registry();
    const count = r.counter("x_total", "Help with \\ and\nnewline.");
    count({ path: 'a"b\\c\nd' }, 2);
    const [family] = parsePrometheusTextFormat(r.render());
    expect(family).toMatchObject({
      name: "x_total",
      type: "COUNTER",
      metrics: [{ value: "2", labels: { path: 'a"b\\c\nd' } }],
    });
  });

  it("counts every record written through the sink, Squid's too, and passes it on unchanged", () => {
    const clock = new FakeClock("manual", 1_700_000_100_000);
    // A Squid driver: no activity() to read connections and tunnels from.
    const squid = Object.assign(new RecordingDriver([]), { kind: "squid" as const });
    const metrics = createAgentMetrics({
      clock,
      driver: () => squid,
      spool: () => ({
        pendingChunks: 2,
        pendingBytes: 10,
        oldestPendingAt: new Date(1_700_000_040_000).toISOString(),
        droppedRecords: 5,
        pendingRecords: 7,
      }),
    });
    const written: LogRecord[] = [];
    const sink = metrics.countingSink({ write: (r) => written.push(r) });
    sink.write(record(1, { action: "allow", bytesIn: 10, bytesOut: 100 }));
    sink.write(record(2, { action: "error", status: 504, bytesIn: 0, bytesOut: 0 }));
    sink.write(record(3, { action: "error", status: 400, bytesIn: 0, bytesOut: 0 }));
    metrics.syncFailed("status");
    metrics.policyApplied({ version: 9, durationMs: 250 });
    expect(written.map((r) => r.requestId)).toEqual(["req-1", "req-2", "req-3"]);
    const families = new Map(parsePrometheusTextFormat(metrics.render()).map((f) => [f.name, f]));
    const one = (name: string, labels: Record<string, string> = {}) =>
      families.get(name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
        ?.value;
    expect(one("fleetgate_proxy_requests_total", { action: "allow" })).toBe("1");
    expect(one("fleetgate_proxy_requests_total", { action: "error" })).toBe("2");
    expect(one("fleetgate_proxy_requests_total", { action: "block" })).toBe("0");
    expect(one("fleetgate_proxy_upstream_errors_total")).toBe("1");
    expect(one("fleetgate_proxy_received_bytes_total")).toBe("10");
    expect(one("fleetgate_proxy_sent_bytes_total")).toBe("100");
    expect(families.get("fleetgate_proxy_active_connections")?.metrics ?? []).toEqual([]);
    expect(one("fleetgate_policy_version")).toBe("9");
    expect(one("fleetgate_policy_last_apply_duration_seconds")).toBe("0.25");
    expect(one("fleetgate_policy_last_apply_timestamp_seconds")).toBe("1700000100");
    expect(one("fleetgate_spool_oldest_pending_age_seconds")).toBe("60");
    expect(one("fleetgate_spool_pending_records")).toBe("7");
    expect(families.get("fleetgate_spool_dropped_records_total")?.type).toBe("COUNTER");
    expect(one("fleetgate_sync_failures_total", { kind: "status" })).toBe("1");
    expect(one("fleetgate_sync_failures_total", { kind: "poll" })).toBe("0");
  });
});
