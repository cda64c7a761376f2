import type { Point, TopDimension, TopRow } from "../../services/reports";
import { formatBytes, ScrollRegion } from "../components";
import { formatInstant, toLocalInput, useZone } from "../time";

export interface ReportRangeView {
  preset: string;
  from: number;
  to: number;
  node?: string | undefined;
  /** A site's nodes; the dashboard drops it when a node is chosen (the node is narrower). */
  site?: string | undefined;
  action?: "allow" | "block" | "auth" | "error";
}

export const DIMENSION_TITLES: Record<TopDimension, [string, string]> = {
  host: ["Top hosts", "Host"],
  client: ["Top clients", "Client"],
  user: ["Top users", "User"],
  rule: ["Top rules", "Rule"],
  node: ["Top nodes", "Node"],
};

export const ACTIONS = ["allow", "block", "auth", "error"] as const;

/** The report's query string (range, node, action) for links and the API. */
export function reportParams(r: ReportRangeView): URLSearchParams {
  const q = new URLSearchParams({ from: String(r.from), to: String(r.to) });
  if (r.node) q.set("node", r.node);
  if (r.site) q.set("site", r.site);
  if (r.action) q.set("action", r.action);
  return q;
}

/** The dashboard page with the same range: presets keep their name, anything else is custom. */
export function pageParams(r: ReportRangeView, zone: string): URLSearchParams {
  const q = new URLSearchParams();
  if (r.preset === "custom") {
    q.set("range", "custom");
    q.set("from", toLocalInput(r.from, zone));
    q.set("to", toLocalInput(r.to, zone));
  } else q.set("range", r.preset);
  if (r.node) q.set("node", r.node);
  if (r.site) q.set("site", r.site);
  if (r.action) q.set("action", r.action);
  return q;
}

const SEARCH_WINDOW = 6 * 3600_000;

/**
 * Where a top row leads: a node to its own report, every other key to the request search filtered
 * by it (its clients, hosts, users). Request search covers at most 6 h: the range's last 6 h.
 */
export function drillHref(by: TopDimension, row: TopRow, r: ReportRangeView, zone: string): string {
  if (by === "node") {
    const q = pageParams({ ...r, node: row.key, site: undefined }, zone);
    return `/reports?${q}`;
  }
  const from = Math.max(r.from, r.to - SEARCH_WINDOW);
  const q = new URLSearchParams({
    from: toLocalInput(from, zone, true),
    to: toLocalInput(r.to, zone, true),
  });
  q.set(by, row.key);
  if (r.node) q.set("node", r.node);
  if (r.action) q.set("action", r.action);
  return `/requests?${q}`;
}

/** A key as a person reads it: requests that named no host (a 431, a client talking HTTP to the proxy). */
export function keyLabel(by: TopDimension, row: TopRow): string {
  if (row.label) return row.label;
  if (row.key === "") return by === "host" ? "(no host: request named none)" : "(none)";
  return row.key;
}

export const bucketLabel = (ms: number) =>
  ms >= 86_400_000
    ? `${ms / 86_400_000} day`
    : ms >= 3_600_000
      ? `${ms / 3_600_000} hour`
      : `${ms / 60_000} min`;

/** The chart's data as a table: the text alternative, and what works without JavaScript. */
export function SeriesTable(props: {
  points: Point[];
  series: { key: keyof Point; label: string }[];
  bytes?: boolean;
  caption: string;
}) {
  const zone = useZone();
  const shown = props.points.filter((p) => props.series.some((s) => (p[s.key] as number) > 0));
  return (
    <details class="chart-table">
      <summary>Show as a table ({shown.length} non-empty buckets)</summary>
      <ScrollRegion label={`${props.caption} table`}>
        <table>
          <caption class="sr-only">{props.caption}</caption>
          <thead>
            <tr>
              <th>Bucket start ({zone})</th>
              {props.series.map((s) => (
                <th class="num">{s.label}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {shown.map((p) => (
              <tr>
                <td>{formatInstant(p.t, zone)}</td>
                {props.series.map((s) => (
                  <td class="num">
                    {props.bytes
                      ? formatBytes(p[s.key] as number)
                      : (p[s.key] as number).toLocaleString("en")}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </ScrollRegion>
    </details>
  );
}

/** A top list, server-rendered; every row links to its filtered view. */
export function TopList(props: {
  by: TopDimension;
  rows: TopRow[];
  other?: { requests: number; blocked: number; bytesIn: number; bytesOut: number } | null;
  range: ReportRangeView;
  start?: number;
}) {
  const zone = useZone();
  const [, label] = DIMENSION_TITLES[props.by];
  return (
    <ScrollRegion label={`${DIMENSION_TITLES[props.by][0]} table`}>
      <table data-top data-top-list={props.by}>
        <thead>
          <tr>
            {props.start !== undefined ? <th class="num">#</th> : null}
            <th>{label}</th>
            <th class="num">{props.range.action ? `${props.range.action} requests` : "Requests"}</th>
            <th class="num">Blocked</th>
            <th class="num">Bytes</th>
          </tr>
        </thead>
        <tbody>
          {props.rows.length === 0 ? (
            <tr>
              <td colspan={props.start !== undefined ? 5 : 4} class="empty">
                No data in this range.
              </td>
            </tr>
          ) : null}
          {props.rows.map((row, i) => (
            <tr>
              {props.start !== undefined ? <td class="num">{props.start + i + 1}</td> : null}
              <td class="key">
                <a href={drillHref(props.by, row, props.range, zone)}>{keyLabel(props.by, row)}</a>
              </td>
              <td class="num">{row.requests.toLocaleString("en")}</td>
              <td class="num">{row.blocked.toLocaleString("en")}</td>
              <td class="num">{formatBytes(row.bytesIn + row.bytesOut)}</td>
            </tr>
          ))}
          {props.other ? (
            <tr>
              {props.start !== undefined ? <td /> : null}
              <td class="muted">(other: outside each node-hour's top K)</td>
              <td class="num">{props.other.requests.toLocaleString("en")}</td>
              <td class="num">{props.other.blocked.toLocaleString("en")}</td>
              <td class="num">{formatBytes(props.other.bytesIn + props.other.bytesOut)}</td>
            </tr>
          ) : null}
        </tbody>
      </table>
    </ScrollRegion>
  );
}

/** A chart with its unit, bucket and zone said, and the same numbers as a table (read without JS). */
export function Chart(props: {
  title: string;
  series: { key: keyof Point; label: string }[];
  unit: string;
  bytes?: boolean;
  bucketMs: number;
  points: Point[];
  src: string;
}) {
  const zone = useZone();
  const caption = `${props.title}: ${props.unit} per ${bucketLabel(props.bucketMs)} bucket, times in ${zone}`;
  return (
    <section class="panel">
      <h2>{props.title}</h2>
      <p class="muted" data-testid="chart-caption">
        {props.unit} per {bucketLabel(props.bucketMs)} bucket · times in {zone}
      </p>
      <div
        class="chart"
        data-chart
        data-series={props.series.map((s) => s.key).join(",")}
        data-src={props.src}
        role="img"
        aria-label={`${caption}. The table below has the same numbers.`}
      >
        <noscript>
          <p class="empty">The chart needs JavaScript; the table below has the same numbers.</p>
        </noscript>
      </div>
      <SeriesTable points={props.points} series={props.series} bytes={props.bytes} caption={caption} />
    </section>
  );
}
