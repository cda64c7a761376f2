import type { Point } from "../../services/reports";
import { ActionButton, Ago, Badge, Time } from "../components";
import { Layout, type PageContext } from "../layout";
import { Chart } from "../reports";
import { type NodeEvent, type NodeView, reportQuery, Spool } from "./shared";

export function NodePage(props: {
  page: PageContext;
  node: NodeView;
  events: NodeEvent[];
  /** Actor id → name, for "revoked by …". */
  actors?: Record<string, string>;
  now: number;
  notice?: string;
  /** The node's last 24 h (services/reports timeseries). */
  series: { bucketMs: number; points: Point[] };
}) {
  const { node: n } = props;
  const admin = props.page.user.role === "admin";
  const range = { from: props.now - 24 * 3600_000, to: props.now, node: n.id };
  return (
    <Layout title={n.hostname} section="/nodes" page={props.page} charts>
      <p>
        <a href="/nodes">← Nodes</a>
      </p>
      <h1 class="key">{n.hostname}</h1>
      {props.notice ? <div class="notice ok">{props.notice}</div> : null}
      {n.sync === "rejected" && n.status !== "revoked" ? <RejectedNextStep node={n} /> : null}
      <p>
        <a href={`/reports?node=${encodeURIComponent(n.id)}`} data-testid="node-reports">
          Reports for this node
        </a>{" "}
        · <a href={`/requests?node=${encodeURIComponent(n.id)}`}>Requests through this node</a>
      </p>
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
              <Row k="Driver" v={driverLine(n)} />
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
        <Chart
          title="Traffic, last 24 h"
          unit="requests"
          series={[
            { key: "requests", label: "Requests" },
            { key: "blocked", label: "Blocked" },
          ]}
          bucketMs={props.series.bucketMs}
          points={props.series.points}
          src={`/api/v1/reports/timeseries?${reportQuery(range)}`}
        />
      </div>
      <section class="panel">
        <h2>Sync events</h2>
        {props.events.length === 0 ? (
          <p class="muted">No events yet.</p>
        ) : (
          <ol class="timeline" data-testid="events">
            {props.events.map((e) => (
              <li>
                <Time at={e.at} /> <Badge value={eventBadge(e.type)} /> {describeEvent(e, props.actors)}
              </li>
            ))}
          </ol>
        )}
      </section>
    </Layout>
  );
}

/** "builtin 0.1.0 on 127.0.0.1:3128": the kind once, even when the driver's version repeats it. */
export function driverLine(n: Pick<NodeView, "proxyKind" | "proxyVersion" | "proxyListen">) {
  const version = n.proxyVersion?.startsWith(`${n.proxyKind}-`)
    ? n.proxyVersion.slice(n.proxyKind.length + 1)
    : n.proxyVersion;
  return `${n.proxyKind}${version ? ` ${version}` : ""}${n.proxyListen ? ` on ${n.proxyListen}` : ""}`;
}

function RejectedNextStep(props: { node: NodeView }) {
  const n = props.node;
  return (
    <div class="notice error" role="alert" data-testid="next-step">
      <strong>This node rejected the policy</strong>
      {n.lastError ? <> with: {n.lastError}</> : null}. It keeps enforcing v{n.appliedVersion ?? "–"}.
      <br />
      Next step: fix the draft under <a href="/policy">Policy</a> (the validation list and{" "}
      <a href="/policy/test">Test a request</a> show why) and publish again, or roll back to the last version
      the fleet accepted under <a href="/policy/history">History</a>. On the node,{" "}
      <code>fleetgate-agent doctor</code> says what its proxy refused.
    </div>
  );
}

const EVENT_BADGE: Record<string, string> = {
  "policy.applied": "applied",
  "policy.rejected": "rejected",
  revoked: "revoked",
};
const eventBadge = (type: string) => EVENT_BADGE[type] ?? type;

/** An event as a sentence: the enrollment JSON and actor ids become words. */
export function describeEvent(e: NodeEvent, actors: Record<string, string> = {}): string {
  const who = (id: string) => actors[id] ?? id;
  const by = e.detail?.startsWith("by ") ? ` by ${who(e.detail.slice(3))}` : "";
  switch (e.type) {
    case "policy.applied":
      return `Applied policy v${e.version ?? "–"}.`;
    case "policy.rejected":
      return `Rejected policy${e.version !== null ? ` (still on v${e.version})` : ""}: ${e.detail ?? "no reason given"}.`;
    case "revoked":
      return `Revoked${by}: its token stopped working.`;
    case "restored":
      return `Restored${by}: may re-enroll once within an hour.`;
    case "enrolled":
    case "re-enrolled": {
      let d: Record<string, unknown> = {};
      try {
        d = JSON.parse(e.detail ?? "{}") as Record<string, unknown>;
      } catch {}
      const parts = [
        d.hostname ? `as ${d.hostname}` : "",
        d.address ? `from ${d.address}` : "",
        d.agentVersion ? `agent ${d.agentVersion}` : "",
        d.keyId ? `with key ${d.keyId}` : "",
      ].filter(Boolean);
      return `${e.type === "enrolled" ? "Enrolled" : "Re-enrolled"}${parts.length ? ` ${parts.join(", ")}` : ""}.`;
    }
    default:
      return `${e.type}${e.version !== null ? ` v${e.version}` : ""}${e.detail ? ` — ${e.detail}` : ""}`;
  }
}

function Row(props: { k: string; v: unknown }) {
  return (
    <tr>
      <th>{props.k}</th>
      <td>{props.v as string}</td>
    </tr>
  );
}
