import type { Point, TopRow } from "../services/reports";
import { Ago, Badge, ScrollRegion, Time } from "./components";
import { Layout, type PageContext } from "./layout";
import { type NodeView, reportQuery } from "./nodes";
import { Chart, TopList } from "./reports";

export function OverviewPage(props: {
  page: PageContext;
  nodes: NodeView[];
  latestVersion: number | null;
  now: number;
  topBlocked: TopRow[];
  /** The last 24 h of the fleet (services/reports timeseries). */
  series: { bucketMs: number; points: Point[] };
}) {
  const live = props.nodes.filter((n) => n.status !== "revoked");
  const online = live.filter((n) => n.status === "online").length;
  const failing = live.filter((n) => n.sync === "rejected").length;
  const onLatest = live.filter((n) => n.sync === "in-sync" && props.latestVersion !== null).length;
  const attention = live.filter(
    (n) =>
      n.status === "offline" ||
      n.sync === "rejected" ||
      n.sync === "behind" ||
      n.sync === "never" ||
      (n.spool?.droppedRecords ?? 0) > 0,
  );
  const range = { from: props.now - 24 * 3600_000, to: props.now };
  return (
    <Layout title="Overview" section="/overview" page={props.page} charts>
      <div class="row">
        <h1>Overview</h1>
        <p class="asof" role="status" data-refresh="60" data-testid="as-of">
          As of <Time at={props.now} seconds />; refreshes every minute. <a href="/overview">Refresh now</a>
        </p>
      </div>
      <div class="stats">
        <Stat n={online} label="nodes online" />
        <Stat n={live.length - online} label="nodes offline" />
        <Stat n={failing} label="nodes failing (rejected policy)" />
        <Stat
          n={`${onLatest} / ${live.length}`}
          label={
            props.latestVersion === null
              ? "no policy published yet"
              : `on latest policy v${props.latestVersion}`
          }
        />
      </div>
      <div class="grid">
        <Chart
          title="Requests and blocked, last 24 h"
          unit="requests"
          series={[
            { key: "requests", label: "Requests" },
            { key: "blocked", label: "Blocked" },
          ]}
          bucketMs={props.series.bucketMs}
          points={props.series.points}
          src={`/api/v1/reports/timeseries?${reportQuery(range)}`}
        />
        <section class="panel">
          <h2>Top blocked hosts, last 24 h</h2>
          <TopList by="host" rows={props.topBlocked} range={{ preset: "24h", ...range, action: "block" }} />
        </section>
      </div>
      <section class="panel">
        <h2>Nodes needing attention</h2>
        {attention.length === 0 ? (
          <p class="muted">
            {live.length === 0
              ? "No nodes enrolled yet: create an enrollment key under Settings."
              : "All nodes are online and in sync."}
          </p>
        ) : (
          <ScrollRegion label="Nodes needing attention table">
            <table>
              <thead>
                <tr>
                  <th>Node</th>
                  <th>State</th>
                  <th>Sync</th>
                  <th>Last seen</th>
                  <th>Why</th>
                </tr>
              </thead>
              <tbody>
                {attention.map((n) => (
                  <tr>
                    <td>
                      <a href={`/nodes/${n.id}`}>{n.hostname}</a>
                    </td>
                    <td>
                      <Badge value={n.status} />
                    </td>
                    <td>
                      <Badge value={n.sync} />
                    </td>
                    <td>
                      <Ago at={n.lastSeenAt} now={props.now} />
                    </td>
                    <td>
                      {n.lastError ??
                        (n.spool?.droppedRecords
                          ? `${n.spool.droppedRecords} log records dropped`
                          : n.status === "offline"
                            ? "not polling"
                            : n.sync === "never"
                              ? "has not applied a policy yet"
                              : `applied v${n.appliedVersion ?? "–"}`)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </ScrollRegion>
        )}
      </section>
    </Layout>
  );
}

function Stat(props: { n: number | string; label: string }) {
  return (
    <div class="stat">
      <div class="n">{props.n}</div>
      <div class="l">{props.label}</div>
    </div>
  );
}
