import type { RequestRow, SearchPage } from "../services/request-search";
import { Badge, formatBytes, Notice } from "./components";
import { Layout, type PageContext } from "./layout";

export interface RequestFormView {
  /** datetime-local values (UTC) */
  from: string;
  to: string;
  node: string;
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

export function RequestsPage(props: {
  page: PageContext;
  form: RequestFormView;
  nodes: { id: string; hostname: string }[];
  result?: SearchPage;
  error?: string;
  /** This search's query string without the cursor: for the next-page link… */
  query: string;
  /** …and the same search for the API (UTC instants), for the export link. */
  apiQuery: string;
}) {
  const f = props.form;
  const r = props.result;
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
              From (UTC)
              <input type="datetime-local" name="from" value={f.from} step="1" required />
            </label>
            <label>
              To (UTC)
              <input type="datetime-local" name="to" value={f.to} step="1" required />
            </label>
            <label>
              Node
              <select name="node">
                <option value="">whole fleet</option>
                {props.nodes.map((n) => (
                  <option value={n.id} selected={f.node === n.id}>
                    {n.hostname}
                  </option>
                ))}
              </select>
            </label>
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
      {r ? (
        <section class="panel">
          <div class="table-wrap">
            <table data-testid="requests">
              <thead>
                <tr>
                  <th>Time (UTC)</th>
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
                        <time datetime={row.ts}>{row.ts.replace("T", " ").slice(0, 23)}</time>
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
          </div>
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
