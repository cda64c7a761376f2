import { ActionButton, Badge, Csrf, type PageInfo, Pager, ScrollRegion, Time } from "../components";
import type { PageContext } from "../layout";
import { SettingsLayout } from "./layout";

export interface KeyRow {
  id: string;
  name: string;
  prefix: string;
  uses: number;
  maxUses: number | null;
  expiresAt: number | null;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export function KeysPage(props: {
  page: PageContext;
  keys: KeyRow[];
  info: PageInfo;
  created?: { key: string; name: string; origin: string };
  error?: string;
}) {
  const admin = props.page.user.role === "admin";
  return (
    <SettingsLayout page={props.page} tab="/settings/keys" title="Enrollment keys" error={props.error}>
      {props.created ? (
        <section class="panel notice ok" data-testid="new-key">
          <h2>Key "{props.created.name}" created — copy it now, it is not shown again</h2>
          <code class="secret" id="new-key">
            {props.created.key}
          </code>
          <p>On the node, run:</p>
          <pre id="enroll-line">{`fleetgate-agent enroll --master ${props.created.origin} --key ${props.created.key}`}</pre>
          <button type="button" data-copy="enroll-line">
            Copy command
          </button>
        </section>
      ) : null}
      {admin ? (
        <section class="panel">
          <h2>New enrollment key</h2>
          <form method="post" action="/settings/keys" class="row">
            <Csrf token={props.page.csrf} />
            <label>
              Name
              <input name="name" required maxlength={100} placeholder="branch offices" />
            </label>
            <label>
              Max uses (empty: unlimited)
              <input name="maxUses" type="number" min={1} />
            </label>
            <label>
              Valid for days (empty: no expiry)
              <input name="days" type="number" min={1} max={3650} />
            </label>
            <button type="submit" class="primary">
              Create key
            </button>
          </form>
        </section>
      ) : null}
      <section class="panel">
        <ScrollRegion label="Enrollment keys table">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Key</th>
                <th>Uses</th>
                <th>Expires</th>
                <th>Created</th>
                <th>Last used</th>
                <th>State</th>
                {admin ? <th /> : null}
              </tr>
            </thead>
            <tbody>
              {props.keys.map((k) => (
                <tr class={k.revokedAt ? "disabled" : ""}>
                  <td>{k.name}</td>
                  <td>
                    <code>{k.prefix}</code>
                  </td>
                  <td>
                    {k.uses}
                    {k.maxUses ? ` / ${k.maxUses}` : ""}
                  </td>
                  <td>{k.expiresAt ? <Time at={k.expiresAt} /> : "never"}</td>
                  <td>
                    <Time at={k.createdAt} />
                  </td>
                  <td>
                    <Time at={k.lastUsedAt} />
                  </td>
                  <td>{k.revokedAt ? <Badge value="revoked" /> : <Badge value="active" />}</td>
                  {admin ? (
                    <td>
                      {k.revokedAt ? null : (
                        <ActionButton
                          action={`/settings/keys/${k.id}/revoke`}
                          csrf={props.page.csrf}
                          label="Revoke"
                          danger
                          confirm={`Revoke key ${k.name}?`}
                        />
                      )}
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollRegion>
        {props.keys.length === 0 ? <p class="muted">No enrollment keys yet.</p> : null}
        <Pager info={props.info} base="/settings/keys" />
      </section>
    </SettingsLayout>
  );
}
