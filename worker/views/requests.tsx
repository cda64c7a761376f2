import type { RequestRow, SearchPage } from "../services/request-search";
import { Badge, formatBytes, NodeSelect, Notice, ScrollRegion, Time } from "./components";
import { Layout, type PageContext } from "./layout";
import { SiteSelect } from "./site-filter";

export interface RequestFormView {
  /** datetime-local values in the page's time zone */
  from: string;
  to: string;
  node: string;
  site: string;
  client: string;
  user: string;
  host: string;
  action: string;
  rule: string;
  status: string;
  limit: string;
}

const ACTIONS = ["", "allow", "block", "auth", "error"] as const;

/** The policy tester's form, filled with the logged request (GET /policy/test?…). */
export function testerHref(r: RequestRow): string {
  const tunnel = r.scheme === "connect";
  const host = r.host.includes(":") ? `[${r.host}]` : r.host;
  const port = r.port === (tunnel ? 443 : 80) ? "" : `:${r.port}`;
  const url = tunnel ? `https://${host}${port}/` : `http://${host}${port}${r.path ?? "/"}`;
  const q = new URLSearchParams({ url, client: r.client, method: r.method, at: r.ts.slice(0, 19) });
  if (r.user) q.set("user", r.user);
  return `/policy/test?${q}`;
}

function shown(value: string | null, fallback = "–") {
  return value ?? <span class="muted">{fallback}</span>;
}

/** Who and what is in these results: the drill-down from a top host to its clients, and back. */
function ResultBreakdown(props: { rows: RequestRow[]; query: string }) {
  const dims = [
    ["client", "Clients"],
    ["host", "Hosts"],
    ["user", "Users"],
  ] as const;
  if (props.rows.length === 0) return null;
  return (
    <div class="grid" data-testid="breakdown">
      {dims.map(([key, title]) => {
        const counts = new Map<string, number>();
        for (const row of props.rows) {
          const k = row[key] ?? "";
          if (k) counts.set(k, (counts.get(k) ?? 0) + 1);
        }
        const top = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 10);
        if (top.length === 0) return null;
        return (
          <section class="panel" data-breakdown={key}>
            <h2>
              {title} in these {props.rows.length} results
            </h2>
            <ul>
              {top.map(([k, n]) => {
                const q = new URLSearchParams(props.query);
                q.set(key, k);
                return (
                  <li>
                    <a href={`/requests?${q}`}>{k}</a> <span class="muted">({n})</span>
                  </li>
                );
              })}
            </ul>
          </section>
        );
      })}
    </div>
  );
}

export function RequestsPage(props: {
  page: PageContext;
  form: RequestFormView;
  nodes: { id: string; hostname: string }[];
  sites: string[];
  result?: SearchPage;
  error?: string;
  /** This search's query string without the cursor: for the next-page link… */
  query: string;
  /** …and the same search for the API (UTC instants), for the export link. */
  apiQuery: string;
}) {
  const f = props.form;
  const r = props.result;
  const zone = props.page.tz?.zone ?? "UTC";
  return (
    <Layout title="Requests" section="/requests" page={props.page}>
      <h1>Requests</h1>
      <section class="panel">
        <p class="muted">
          Individual requests from the raw log archive, newest first. A window covers at most 6 hours.
        </p>
        <form method="get" action="/requests" class="stack" data-testid="request-search">
          <div class="row">
            <label>
              From ({zone})
              <input type="datetime-local" name="from" value={f.from} step="1" required />
            </label>
            <label>
              To ({zone})
              <input type="datetime-local" name="to" value={f.to} step="1" required />
            </label>
            <NodeSelect nodes={props.nodes} current={f.node} />
            {props.sites.length ? <SiteSelect sites={props.sites} current={f.site} /> : null}
            <label>
              Action
              <select name="action">
                {ACTIONS.map((a) => (
                  <option value={a} selected={f.action === a}>
                    {a || "any"}
                  </option>
                ))}
              </select>
            </label>
          </div>
          <div class="row">
            <label>
              Client
              <input name="client" value={f.client} placeholder="10.0.0.10" />
            </label>
            <label>
              User
              <input name="user" value={f.user} />
            </label>
            <label>
              Host (and subdomains)
              <input name="host" value={f.host} placeholder="example.com" />
            </label>
            <label>
              Rule
              <input name="rule" value={f.rule} />
            </label>
            <label>
              Status
              <input name="status" value={f.status} placeholder="403 or 4xx" />
            </label>
          </div>
          <div class="actions">
            <button type="submit" class="primary">
              Search
            </button>
            <a href={`/api/v1/requests/export.ndjson?${props.apiQuery}`} download data-testid="export">
              Export NDJSON
            </a>
          </div>
        </form>
      </section>
      {props.error ? <Notice kind="error">{props.error}</Notice> : null}
      {r ? <ResultBreakdown rows={r.rows} query={props.query} /> : null}
      {r ? (
        <section class="panel">
          <ScrollRegion label="Requests table">
            <table data-testid="requests">
              <thead>
                <tr>
                  <th>Time ({zone})</th>
                  <th>Node</th>
                  <th>Client</th>
                  <th>User</th>
                  <th>Method</th>
                  <th>Host</th>
                  <th>Path</th>
                  <th class="num">Status</th>
                  <th>Action</th>
                  <th>Rule</th>
                  <th class="num">Bytes</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {r.rows.length === 0 ? (
                  <tr>
                    <td colspan={12} class="empty">
                      {r.partial ? "Nothing found yet in the chunks read so far." : "No requests match."}
                    </td>
                  </tr>
                ) : (
                  r.rows.map((row) => (
                    <tr data-request={row.requestId}>
                      <td>
                        <Time at={Date.parse(row.ts)} seconds />
                      </td>
                      <td>{row.node}</td>
                      <td>{row.client}</td>
                      <td>{shown(row.user)}</td>
                      <td>{row.method}</td>
                      <td>{row.port === 80 || row.port === 443 ? row.host : `${row.host}:${row.port}`}</td>
                      <td>
                        <code>{shown(row.path)}</code>
                      </td>
                      <td class="num">{row.status}</td>
                      <td>
                        <Badge value={row.action} />
                      </td>
                      <td>{shown(row.rule)}</td>
                      <td class="num" title={`in ${row.bytesIn} B, out ${row.bytesOut} B`}>
                        {formatBytes(row.bytesIn + row.bytesOut)}
                      </td>
                      <td>
                        {row.action === "block" ? (
                          <a class="button small" href={testerHref(row)} data-testid="test-request">
                            Test
                          </a>
                        ) : null}
                      </td>
                    </tr>
                  ))
                )}
              </tbody>
            </table>
          </ScrollRegion>
          <nav class="pager" aria-label="Pages">
            <span class="muted">
              {r.rows.length} shown · {r.scanned.chunks} chunks, {r.scanned.records.toLocaleString("en")}{" "}
              records read
            </span>
            {r.nextCursor ? (
              <a
                href={`/requests?${props.query}&cursor=${encodeURIComponent(r.nextCursor)}`}
                data-testid="older"
              >
                {r.partial ? "Keep searching →" : "Older →"}
              </a>
            ) : null}
          </nav>
        </section>
      ) : null}
    </Layout>
  );
}
