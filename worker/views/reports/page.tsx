import type { Incomplete, Point, Summary, TopDimension, TopRow } from "../../services/reports";
import { formatBytes, NodeSelect } from "../components";
import { Layout, type PageContext } from "../layout";
import { SiteSelect } from "../site-filter";
import { formatInstant, toLocalInput, useZone } from "../time";
import {
  ACTIONS,
  Chart,
  DIMENSION_TITLES,
  pageParams,
  type ReportRangeView,
  reportParams,
  TopList,
} from "./shared";

const PRESETS = [
  ["1h", "1 h"],
  ["24h", "24 h"],
  ["7d", "7 d"],
  ["30d", "30 d"],
] as const;

export interface TopResult {
  by: TopDimension;
  rows: TopRow[];
  other: { requests: number; blocked: number; bytesIn: number; bytesOut: number } | null;
}

/** Gap notices name instants in the page's zone, not as raw ISO strings. */
function readableGap(text: string, zone: string) {
  return text.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, (iso) =>
    formatInstant(Date.parse(iso), zone),
  );
}

function RangeForm(props: {
  range: ReportRangeView;
  nodes: { id: string; hostname: string }[];
  sites: string[];
}) {
  const zone = useZone();
  const r = props.range;
  return (
    <form method="get" action="/reports" class="row" data-testid="range-form">
      <input type="hidden" name="range" value="custom" />
      <label>
        From ({zone})
        <input type="datetime-local" name="from" value={toLocalInput(r.from, zone)} required />
      </label>
      <label>
        To ({zone})
        <input type="datetime-local" name="to" value={toLocalInput(r.to, zone)} required />
      </label>
      <NodeSelect nodes={props.nodes} current={r.node} />
      <label>
        Action (top lists)
        <select name="action">
          <option value="">any</option>
          {ACTIONS.map((a) => (
            <option value={a} selected={r.action === a}>
              {a}
            </option>
          ))}
        </select>
      </label>
      {props.sites.length ? <SiteSelect sites={props.sites} current={r.site} allLabel="every site" /> : null}
      <button type="submit">Apply</button>
    </form>
  );
}

export function ReportsPage(props: {
  page: PageContext;
  range: ReportRangeView;
  nodes: { id: string; hostname: string }[];
  sites: string[];
  summary: Summary;
  series: { bucketMs: number; points: Point[] };
  tops: TopResult[];
  incomplete: Incomplete[];
}) {
  return (
    <Layout title="Reports" section="/reports" page={props.page} charts>
      <ReportsBody {...props} />
    </Layout>
  );
}

function ReportsBody(props: Parameters<typeof ReportsPage>[0]) {
  const zone = useZone();
  const r = props.range;
  const api = reportParams(r).toString();
  const presetHref = (p: string) => {
    const q = pageParams({ ...r, preset: p }, zone);
    return `/reports?${q}`;
  };
  const s = props.summary;
  const here = pageParams(r, zone);
  return (
    <>
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
          <RangeForm range={r} nodes={props.nodes} sites={props.sites} />
        </div>
        <p class="muted" data-testid="range-text">
          {formatInstant(r.from, zone)} – {formatInstant(r.to, zone)}
          {r.node
            ? ` · node ${props.nodes.find((n) => n.id === r.node)?.hostname ?? r.node}`
            : r.site
              ? ` · site ${r.site}`
              : " · whole fleet"}
          {r.action ? ` · top lists count ${r.action} requests` : ""}
        </p>
      </section>
      {props.incomplete.length ? (
        <div class="notice warn" role="status" data-testid="gaps">
          <strong>Reporting gaps in this range:</strong> some nodes have not delivered all their records yet,
          so totals may be low.
          <ul>
            {props.incomplete.map((g) => (
              <li>
                {g.hostname ?? g.nodeId}: {readableGap(g.missing, zone)}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      <div class="stats" data-testid="summary">
        {(
          [
            ["requests", s.requests.toLocaleString("en"), "requests"],
            ["blocked", s.blocked.toLocaleString("en"), "blocked"],
            ["allowed", s.allowed.toLocaleString("en"), "allowed"],
            ["bytes", formatBytes(s.bytesIn + s.bytesOut), "transferred"],
            ["clients", s.clients.toLocaleString("en"), "clients"],
            ["users", s.users.toLocaleString("en"), "users"],
            ["nodes", s.nodes.toLocaleString("en"), "nodes reporting"],
          ] as const
        ).map(([key, n, label]) => (
          <div class="stat">
            <div class="n" data-key={key}>
              {n}
            </div>
            <div class="l">{label}</div>
          </div>
        ))}
      </div>
      <p>
        <a href={`/api/v1/reports/export.csv?report=summary&${api}`} download>
          Summary CSV
        </a>{" "}
        ·{" "}
        <a href={`/api/v1/reports/export.csv?report=timeseries&${api}`} download data-testid="csv-timeseries">
          Time series CSV
        </a>
      </p>
      <div class="grid">
        <Chart
          title="Requests and blocked"
          unit="requests"
          series={[
            { key: "requests", label: "Requests" },
            { key: "blocked", label: "Blocked" },
          ]}
          bucketMs={props.series.bucketMs}
          points={props.series.points}
          src={`/api/v1/reports/timeseries?${api}`}
        />
        <Chart
          title="Bytes"
          unit="bytes (KiB = 1024 B)"
          bytes
          series={[
            { key: "bytesIn", label: "Bytes in" },
            { key: "bytesOut", label: "Bytes out" },
          ]}
          bucketMs={props.series.bucketMs}
          points={props.series.points}
          src={`/api/v1/reports/timeseries?${api}`}
        />
      </div>
      <div class="grid">
        {props.tops.map((t) => (
          <section class="panel">
            <div class="row">
              <h2>{DIMENSION_TITLES[t.by][0]}</h2>
              <a href={`/reports/top/${t.by}?${here}`} data-testid={`all-${t.by}`}>
                View all
              </a>
              <a
                href={`/api/v1/reports/export.csv?report=top&by=${t.by}&${api}`}
                download
                data-testid={`csv-${t.by}`}
              >
                CSV
              </a>
            </div>
            <TopList by={t.by} rows={t.rows} other={t.other} range={r} />
          </section>
        ))}
      </div>
    </>
  );
}

/** One dimension beyond the first 10, paged. */
export function TopPage(props: {
  page: PageContext;
  range: ReportRangeView;
  by: TopDimension;
  rows: TopRow[];
  pageNo: number;
  hasMore: boolean;
  size: number;
}) {
  return (
    <Layout title={DIMENSION_TITLES[props.by][0]} section="/reports" page={props.page}>
      <TopPageBody {...props} />
    </Layout>
  );
}

function TopPageBody(props: Parameters<typeof TopPage>[0]) {
  const zone = useZone();
  const r = props.range;
  const back = pageParams(r, zone);
  const link = (p: number) => {
    const q = pageParams(r, zone);
    q.set("page", String(p));
    return `/reports/top/${props.by}?${q}`;
  };
  return (
    <>
      <p>
        <a href={`/reports?${back}`}>← Reports</a>
      </p>
      <h1>{DIMENSION_TITLES[props.by][0]}</h1>
      <p class="muted">
        {formatInstant(r.from, zone)} – {formatInstant(r.to, zone)}
        {r.node ? ` · node ${r.node}` : r.site ? ` · site ${r.site}` : " · whole fleet"}
        {r.action ? ` · ${r.action} requests` : ""}
      </p>
      <section class="panel">
        <TopList by={props.by} rows={props.rows} range={r} start={(props.pageNo - 1) * props.size} />
        <nav class="pager" aria-label="Pages">
          {props.pageNo > 1 ? (
            <a href={link(props.pageNo - 1)}>← Previous</a>
          ) : (
            <span class="muted">← Previous</span>
          )}
          <span>Page {props.pageNo}</span>
          {props.hasMore ? <a href={link(props.pageNo + 1)}>Next →</a> : <span class="muted">Next →</span>}
        </nav>
      </section>
    </>
  );
}
