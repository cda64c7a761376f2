import type { Child } from "hono/jsx";
import type { FleetQuery } from "../../services/fleet";
import { Ago, Badge, type PageInfo, Pager, ScrollRegion } from "../components";
import { Layout, type PageContext } from "../layout";
import { type NodeView, Spool } from "./shared";

const STATES = ["online", "offline", "revoked"] as const;
const SYNCS = ["in-sync", "behind", "rejected", "never"] as const;

/** `/nodes?…` with `change` applied to the current filters (sorting and paging keep the rest). */
export function nodesUrl(query: FleetQuery, change: Partial<Record<keyof FleetQuery, string | undefined>>) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...query, ...change })) {
    if (v !== undefined && v !== "" && !(k === "page" && String(v) === "1")) params.set(k, String(v));
  }
  const s = params.toString();
  return s ? `/nodes?${s}` : "/nodes";
}

/** A column header that sorts by `key`, ascending first, and says how it is sorted now. */
function SortHeader(props: { query: FleetQuery; by: string; label: string }) {
  const current = props.query.sort ?? "hostname";
  const active = current.replace(/^-/, "") === props.by;
  const descending = active && current.startsWith("-");
  const next = active && !descending ? `-${props.by}` : props.by;
  return (
    <th aria-sort={active ? (descending ? "descending" : "ascending") : undefined}>
      <a href={nodesUrl(props.query, { sort: next, page: undefined })} data-sort={props.by}>
        {props.label}
        {active ? (descending ? " ↓" : " ↑") : ""}
      </a>
    </th>
  );
}

function Filters(props: { query: FleetQuery; versions: string[] }) {
  const q = props.query;
  return (
    <form method="get" action="/nodes" class="filters" data-testid="node-filters">
      <label>
        Search
        <input
          type="search"
          name="q"
          value={q.q ?? ""}
          placeholder="hostname, address or node id"
          maxlength={200}
        />
      </label>
      <label>
        State
        <select name="state">
          <option value="">any</option>
          {STATES.map((s) => (
            <option value={s} selected={q.state === s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      <label>
        Sync
        <select name="sync">
          <option value="">any</option>
          {SYNCS.map((s) => (
            <option value={s} selected={q.sync === s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      <label>
        Agent version
        <select name="version">
          <option value="">any</option>
          {props.versions.map((v) => (
            <option value={v} selected={q.version === v}>
              {v}
            </option>
          ))}
        </select>
      </label>
      {q.site ? <input type="hidden" name="site" value={q.site} /> : null}
      {q.sort ? <input type="hidden" name="sort" value={q.sort} /> : null}
      <button type="submit">Apply</button>
      {q.q || q.state || q.sync || q.version || q.site ? <a href="/nodes">Clear filters</a> : null}
    </form>
  );
}

export function NodesPage(props: {
  page: PageContext;
  nodes: NodeView[];
  info: PageInfo;
  query: FleetQuery;
  versions: string[];
  fleetSize: number;
  now: number;
  /** The site picker (views/site-filter.tsx), shown above the other filters. */
  siteFilter?: Child;
}) {
  const { query } = props;
  return (
    <Layout title="Nodes" section="/nodes" page={props.page}>
      <h1>Nodes</h1>
      {props.fleetSize === 0 ? (
        <p class="panel muted">
          No nodes yet. Create an enrollment key under Settings and run the printed command on a node.
        </p>
      ) : (
        <section class="panel">
          {props.siteFilter}
          <Filters query={query} versions={props.versions} />
          <p class="muted" role="status" data-testid="node-count">
            {props.info.total === props.fleetSize
              ? `${props.info.total} nodes`
              : `${props.info.total} of ${props.fleetSize} nodes match`}
          </p>
          {props.info.total === 0 ? (
            <p>No node matches these filters.</p>
          ) : (
            <ScrollRegion label="Nodes table">
              <table data-testid="fleet" class="fleet">
                <thead>
                  <tr>
                    <SortHeader query={query} by="hostname" label="Name" />
                    <th>Site</th>
                    <th>Address</th>
                    <SortHeader query={query} by="status" label="State" />
                    <SortHeader query={query} by="applied" label="Policy (applied / latest)" />
                    <SortHeader query={query} by="agent" label="Agent" />
                    <th>Driver</th>
                    <SortHeader query={query} by="seen" label="Last seen" />
                    <th>Last error</th>
                    <th>Spool backlog</th>
                  </tr>
                </thead>
                <tbody>
                  {props.nodes.map((n) => (
                    <tr>
                      <td class="key">
                        <a href={`/nodes/${n.id}`}>{n.hostname}</a>
                      </td>
                      <td>{n.site ?? <span class="muted">–</span>}</td>
                      <td>{n.lastAddress ?? "–"}</td>
                      <td>
                        <Badge value={n.status} /> <Badge value={n.sync} />
                      </td>
                      <td>
                        v{n.appliedVersion ?? "–"} / v{n.latestVersion ?? "–"}
                      </td>
                      <td>{n.agentVersion}</td>
                      <td>
                        {n.proxyKind}
                        {n.proxyListen ? <span class="muted"> {n.proxyListen}</span> : null}
                      </td>
                      <td>
                        <Ago at={n.lastSeenAt} now={props.now} />
                      </td>
                      <td>{n.lastError ?? <span class="muted">–</span>}</td>
                      <td>
                        <Spool spool={n.spool} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </ScrollRegion>
          )}
          <Pager info={props.info} base={nodesUrl(query, { page: undefined })} />
        </section>
      )}
    </Layout>
  );
}
