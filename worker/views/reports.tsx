import { TopTable } from "./components";
import { Layout, type PageContext } from "./layout";
import { reportQuery } from "./nodes";

export interface ReportRangeView {
  preset: string;
  from: number;
  to: number;
  node?: string;
}

const PRESETS = [
  ["1h", "1 h"],
  ["24h", "24 h"],
  ["7d", "7 d"],
  ["30d", "30 d"],
] as const;

const DIMENSIONS = [
  ["host", "Top hosts"],
  ["client", "Top clients"],
  ["user", "Top users"],
  ["rule", "Top rules"],
  ["node", "Top nodes"],
] as const;

const local = (ms: number) => new Date(ms).toISOString().slice(0, 16);

export function ReportsPage(props: {
  page: PageContext;
  range: ReportRangeView;
  nodes: { id: string; hostname: string }[];
}) {
  const r = props.range;
  const q = reportQuery(r);
  const presetHref = (p: string) =>
    `/reports?range=${p}${r.node ? `&node=${encodeURIComponent(r.node)}` : ""}`;
  return (
    <Layout title="Reports" section="/reports" page={props.page} charts>
      <h1>Reports</h1>
      <section class="panel">
        <div class="row">
          <nav class="actions" aria-label="Range presets">
            {PRESETS.map(([id, label]) => (
              <a
                class={`button ${r.preset === id ? "primary" : ""}`}
                href={presetHref(id)}
                aria-current={r.preset === id ? "true" : undefined}
              >
                {label}
              </a>
            ))}
          </nav>
          <form method="get" action="/reports" class="row" data-testid="range-form">
            <input type="hidden" name="range" value="custom" />
            <label>
              From (UTC)
              <input type="datetime-local" name="from" value={local(r.from)} required />
            </label>
            <label>
              To (UTC)
              <input type="datetime-local" name="to" value={local(r.to)} required />
            </label>
            <label>
              Node
              <select name="node">
                <option value="">whole fleet</option>
                {props.nodes.map((n) => (
                  <option value={n.id} selected={r.node === n.id}>
                    {n.hostname}
                  </option>
                ))}
              </select>
            </label>
            <button type="submit">Apply</button>
          </form>
        </div>
        <p class="muted">
          {new Date(r.from).toISOString().replace("T", " ").slice(0, 16)} –{" "}
          {new Date(r.to).toISOString().replace("T", " ").slice(0, 16)} UTC
          {r.node
            ? ` · node ${props.nodes.find((n) => n.id === r.node)?.hostname ?? r.node}`
            : " · whole fleet"}
        </p>
      </section>
      <div class="notice warn" data-gaps hidden role="status">
        <strong>Reporting gaps in this range:</strong> some nodes have not delivered all their records yet, so
        totals may be low.
        <ul />
      </div>
      <div class="notice" data-nodata hidden>
        No report data is available from the master yet.
      </div>
      <div class="stats" data-summary data-src={`/api/v1/reports/summary?${q}`}>
        {[
          ["requests", "requests"],
          ["blocked", "blocked"],
          ["allowed", "allowed"],
          ["bytes", "transferred"],
          ["clients", "clients"],
          ["users", "users"],
          ["nodes", "nodes reporting"],
        ].map(([key, label]) => (
          <div class="stat">
            <div class="n" data-key={key}>
              …
            </div>
            <div class="l">{label}</div>
          </div>
        ))}
      </div>
      <p>
        <a href={`/api/v1/reports/export.csv?report=summary&${q}`} download>
          Summary CSV
        </a>{" "}
        ·{" "}
        <a href={`/api/v1/reports/export.csv?report=timeseries&${q}`} download data-testid="csv-timeseries">
          Time series CSV
        </a>
      </p>
      <div class="grid">
        <section class="panel">
          <h2>Requests and blocked</h2>
          <div
            class="chart"
            data-chart
            data-series="requests,blocked"
            data-src={`/api/v1/reports/timeseries?${q}`}
          />
        </section>
        <section class="panel">
          <h2>Bytes</h2>
          <div
            class="chart"
            data-chart
            data-series="bytesIn,bytesOut"
            data-src={`/api/v1/reports/timeseries?${q}`}
          />
        </section>
      </div>
      <div class="grid">
        {DIMENSIONS.map(([by, title]) => (
          <section class="panel">
            <div class="row">
              <h2>{title}</h2>
              <a
                href={`/api/v1/reports/export.csv?report=top&by=${by}&${q}`}
                download
                data-testid={`csv-${by}`}
              >
                CSV
              </a>
            </div>
            <TopTable keyLabel={by} src={`/api/v1/reports/top?by=${by}&limit=10&${q}`} />
          </section>
        ))}
      </div>
    </Layout>
  );
}
