import type { Child } from "hono/jsx";
import { ActionButton, Ago, Badge, formatBytes, type PageInfo, Pager, Time } from "./components";
import { Layout, type PageContext } from "./layout";

export interface NodeView {
  id: string;
  hostname: string;
  status: "online" | "offline" | "revoked";
  sync: "in-sync" | "behind" | "rejected" | "never" | "held";
  site?: string | null;
  appliedHash?: string | null;
  appliedVersion: number | null;
  latestVersion: number | null;
  agentVersion: string;
  proxyKind: string;
  proxyListen: string | null;
  proxyVersion: string | null;
  lastAddress: string | null;
  lastSeenAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  enrolledAt: number;
  uptimeSeconds: number | null;
  spool: {
    pendingChunks?: number;
    pendingBytes?: number;
    oldestPendingAt?: number | null;
    droppedRecords?: number;
  } | null;
  revokedAt: number | null;
}

export interface NodeEvent {
  id: number;
  at: number;
  type: string;
  version: number | null;
  detail: string | null;
}

export const reportQuery = (r: { from: number; to: number; node?: string }) =>
  `from=${r.from}&to=${r.to}${r.node ? `&node=${encodeURIComponent(r.node)}` : ""}`;

function Spool(props: { spool: NodeView["spool"] }) {
  const s = props.spool;
  if (!s) return <span class="muted">–</span>;
  return (
    <span>
      {s.pendingChunks ?? 0} chunks / {formatBytes(s.pendingBytes ?? 0)}
      {s.droppedRecords ? <span class="badge bad">{s.droppedRecords} dropped</span> : null}
    </span>
  );
}

export function NodesPage(props: {
  page: PageContext;
  nodes: NodeView[];
  info: PageInfo;
  now: number;
  filter?: Child;
}) {
  return (
    <Layout title="Nodes" section="/nodes" page={props.page}>
      <h1>Nodes</h1>
      {props.filter}
      {props.info.total === 0 ? (
        <p class="panel muted">
          No nodes yet. Create an enrollment key under Settings and run the printed command on a node.
        </p>
      ) : (
        <section class="panel">
          <div class="table-wrap">
            <table data-testid="fleet">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Site</th>
                  <th>Address</th>
                  <th>State</th>
                  <th>Policy (applied / latest)</th>
                  <th>Agent</th>
                  <th>Driver</th>
                  <th>Last seen</th>
                  <th>Last error</th>
                  <th>Spool backlog</th>
                </tr>
              </thead>
              <tbody>
                {props.nodes.map((n) => (
                  <tr>
                    <td>
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
          </div>
          <Pager info={props.info} base="/nodes" />
        </section>
      )}
    </Layout>
  );
}

export function NodePage(props: {
  page: PageContext;
  node: NodeView;
  events: NodeEvent[];
  now: number;
  notice?: string;
}) {
  const { node: n } = props;
  const admin = props.page.user.role === "admin";
  const range = { from: props.now - 24 * 3600_000, to: props.now, node: n.id };
  return (
    <Layout title={n.hostname} section="/nodes" page={props.page} charts>
      <p>
        <a href="/nodes">← Nodes</a>
      </p>
      <h1>{n.hostname}</h1>
      {props.notice ? <div class="notice ok">{props.notice}</div> : null}
      <div class="grid">
        <section class="panel">
          <h2>State</h2>
          <table>
            <tbody>
              <Row k="Node id" v={<code>{n.id}</code>} />
              <Row
                k="State"
                v={
                  <>
                    <Badge value={n.status} /> <Badge value={n.sync} />
                  </>
                }
              />
              <Row k="Policy" v={`applied v${n.appliedVersion ?? "–"}, latest v${n.latestVersion ?? "–"}`} />
              <Row k="Address" v={n.lastAddress ?? "–"} />
              <Row k="Agent" v={n.agentVersion} />
              <Row
                k="Driver"
                v={`${n.proxyKind}${n.proxyVersion ? ` ${n.proxyVersion}` : ""}${n.proxyListen ? ` on ${n.proxyListen}` : ""}`}
              />
              <Row k="Last seen" v={<Ago at={n.lastSeenAt} now={props.now} />} />
              <Row k="Enrolled" v={<Time at={n.enrolledAt} />} />
              <Row k="Uptime" v={n.uptimeSeconds == null ? "–" : `${Math.round(n.uptimeSeconds / 3600)} h`} />
              <Row k="Spool backlog" v={<Spool spool={n.spool} />} />
              <Row
                k="Last error"
                v={
                  n.lastError ? (
                    <>
                      {n.lastError} (<Time at={n.lastErrorAt} />)
                    </>
                  ) : (
                    "–"
                  )
                }
              />
            </tbody>
          </table>
          {admin && n.status !== "revoked" ? (
            <p>
              <ActionButton
                action={`/nodes/${n.id}/revoke`}
                csrf={props.page.csrf}
                label="Revoke node"
                danger
                confirm={`Revoke ${n.hostname}? Its token stops working at once; it keeps enforcing its last policy.`}
              />
            </p>
          ) : null}
        </section>
        <section class="panel">
          <h2>Traffic, last 24 h</h2>
          <div
            class="chart"
            data-chart
            data-series="requests,blocked"
            data-src={`/api/v1/reports/timeseries?${reportQuery(range)}`}
          />
        </section>
      </div>
      <section class="panel">
        <h2>Sync events</h2>
        {props.events.length === 0 ? (
          <p class="muted">No events yet.</p>
        ) : (
          <ol class="timeline">
            {props.events.map((e) => (
              <li>
                <Time at={e.at} /> <Badge value={e.type.replace("policy.", "")} /> <strong>{e.type}</strong>
                {e.version !== null ? ` v${e.version}` : ""}
                {e.detail ? <span class="muted"> — {e.detail}</span> : null}
              </li>
            ))}
          </ol>
        )}
      </section>
    </Layout>
  );
}

function Row(props: { k: string; v: unknown }) {
  return (
    <tr>
      <th>{props.k}</th>
      <td>{props.v as string}</td>
    </tr>
  );
}
