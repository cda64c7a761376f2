import type { AlertKind } from "../../../protocol/alerts";
import { ActionButton, Badge, Csrf, ScrollRegion, Time } from "../components";
import type { PageContext } from "../layout";
import { SettingsLayout } from "./layout";

const KIND_LABELS: Record<string, string> = {
  "node.offline": "A node stops polling (offline)",
  "policy.rejected": "A node rejects the policy",
  "records.dropped": "A node drops log records",
  "spool.backlog": "A node's log spool backs up",
  "rollout.halted": "A rollout halts",
  "logs.tally_refused": "A node's log tally is refused (counted from its records)",
};

export interface AlertRow {
  id: string;
  kind: string;
  subject: string;
  summary: string;
  firedAt: number;
  lastSeenAt: number;
  resolvedAt: number | null;
  delivery: string;
  deliveryError: string | null;
  attempts: number;
  retryAt: number | null;
}

export function AlertsPage(props: {
  page: PageContext;
  config: { url: string | null; kinds: AlertKind[]; backlogMinutes: number; secretSet: boolean };
  kinds: readonly string[];
  alerts: AlertRow[];
  notice?: string;
  error?: string;
}) {
  const admin = props.page.user.role === "admin";
  const { config } = props;
  return (
    <SettingsLayout
      page={props.page}
      tab="/settings/alerts"
      title="Alerts"
      notice={props.notice}
      error={props.error}
    >
      <section class="panel">
        <h2>Webhook</h2>
        <p class="muted">
          Each alert is a JSON POST signed with HMAC-SHA256 over <code>timestamp.body</code> (headers{" "}
          <code>X-Fleetgate-Timestamp</code>, <code>X-Fleetgate-Signature: sha256=…</code>). The same
          condition alerts once until it clears. Conditions are checked every 5 minutes.
        </p>
        <form method="post" action="/settings/alerts" class="stack" data-testid="alerts-form">
          <Csrf token={props.page.csrf} />
          <label>
            Webhook URL
            <input
              name="url"
              type="url"
              value={config.url ?? ""}
              maxlength={2048}
              placeholder="https://hooks.example.com/fleetgate"
              disabled={!admin}
            />
          </label>
          <label>
            Shared secret {config.secretSet ? "(set; leave empty to keep it)" : "(16 to 256 characters)"}
            <input
              name="secret"
              type="password"
              autocomplete="new-password"
              minlength={16}
              maxlength={256}
              disabled={!admin}
            />
          </label>
          {config.secretSet && admin ? (
            <label class="check">
              <input type="checkbox" name="clearSecret" value="1" /> Remove the stored secret
            </label>
          ) : null}
          <fieldset>
            <legend>Send an alert when</legend>
            {props.kinds.map((k) => (
              <label class="check">
                <input
                  type="checkbox"
                  name="kinds"
                  value={k}
                  checked={config.kinds.includes(k as AlertKind)}
                  disabled={!admin}
                />{" "}
                {KIND_LABELS[k] ?? k}
              </label>
            ))}
          </fieldset>
          <label>
            Spool backlog threshold (minutes)
            <input
              name="backlogMinutes"
              type="number"
              min={1}
              max={10080}
              value={String(config.backlogMinutes)}
              disabled={!admin}
            />
          </label>
          {admin ? (
            <button type="submit" class="primary">
              Save alerts
            </button>
          ) : null}
        </form>
        {admin ? (
          <p>
            <ActionButton
              action="/settings/alerts/test"
              csrf={props.page.csrf}
              label="Send test alert"
              testid="send-test"
            />
          </p>
        ) : null}
      </section>
      <section class="panel">
        <h2>Recent alerts</h2>
        {props.alerts.length === 0 ? (
          <p class="muted">No alerts yet.</p>
        ) : (
          <ScrollRegion label="Recent alerts table">
            <table data-testid="alerts">
              <thead>
                <tr>
                  <th>Fired</th>
                  <th>Kind</th>
                  <th>What</th>
                  <th>Delivery</th>
                  <th>State</th>
                </tr>
              </thead>
              <tbody>
                {props.alerts.map((a) => (
                  <tr>
                    <td>
                      <Time at={a.firedAt} />
                    </td>
                    <td>
                      <code>{a.kind}</code>
                    </td>
                    <td>{a.summary}</td>
                    <td>
                      <Badge value={a.delivery} />
                      {a.deliveryError ? <span class="muted"> {a.deliveryError}</span> : null}
                      {a.retryAt !== null && !a.resolvedAt ? (
                        <span class="muted" data-testid="retry">
                          {" "}
                          (try {a.attempts + 1} at <Time at={a.retryAt} />)
                        </span>
                      ) : null}
                    </td>
                    <td>
                      {a.resolvedAt ? (
                        "resolved"
                      ) : (
                        <>
                          open{" "}
                          <ActionButton
                            action={`/settings/alerts/${a.id}/resolve`}
                            csrf={props.page.csrf}
                            label="Resolve"
                            testid={`resolve-${a.id}`}
                          />
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </ScrollRegion>
        )}
      </section>
    </SettingsLayout>
  );
}
