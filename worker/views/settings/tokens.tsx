import { ActionButton, Badge, Csrf, type PageInfo, Pager, ScrollRegion, Time } from "../components";
import type { PageContext } from "../layout";
import { SettingsLayout } from "./layout";

export interface TokenRow {
  id: string;
  name: string;
  role: "admin" | "viewer";
  prefix: string;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export function TokensPage(props: {
  page: PageContext;
  tokens: TokenRow[];
  info: PageInfo;
  created?: { token: string; name: string };
  error?: string;
}) {
  const admin = props.page.user.role === "admin";
  return (
    <SettingsLayout page={props.page} tab="/settings/tokens" title="API tokens" error={props.error}>
      {props.created ? (
        <section class="panel notice ok">
          <h2>Token "{props.created.name}" created — copy it now, it is not shown again</h2>
          <code class="secret">{props.created.token}</code>
        </section>
      ) : null}
      {admin ? (
        <section class="panel">
          <h2>New API token</h2>
          <form method="post" action="/settings/tokens" class="row">
            <Csrf token={props.page.csrf} />
            <label>
              Name
              <input name="name" required maxlength={100} />
            </label>
            <label>
              Role
              <select name="role">
                <option value="viewer">viewer</option>
                <option value="admin">admin</option>
              </select>
            </label>
            <label>
              Valid for days (empty: no expiry)
              <input name="days" type="number" min={1} max={3650} />
            </label>
            <button type="submit" class="primary">
              Create token
            </button>
          </form>
        </section>
      ) : null}
      <section class="panel">
        <ScrollRegion label="API tokens table">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Token</th>
                <th>Role</th>
                <th>Created</th>
                <th>Expires</th>
                <th>Last used</th>
                {admin ? <th /> : null}
              </tr>
            </thead>
            <tbody>
              {props.tokens.map((t) => (
                <tr class={t.revokedAt ? "disabled" : ""}>
                  <td>{t.name}</td>
                  <td>
                    <code>{t.prefix}</code>
                  </td>
                  <td>
                    <Badge value={t.role} />
                  </td>
                  <td>
                    <Time at={t.createdAt} />
                  </td>
                  <td>{t.expiresAt ? <Time at={t.expiresAt} /> : "never"}</td>
                  <td>
                    <Time at={t.lastUsedAt} />
                  </td>
                  {admin ? (
                    <td>
                      {t.revokedAt ? (
                        <Badge value="revoked" />
                      ) : (
                        <ActionButton
                          action={`/settings/tokens/${t.id}/revoke`}
                          csrf={props.page.csrf}
                          label="Revoke"
                          danger
                          confirm={`Revoke token ${t.name}?`}
                        />
                      )}
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollRegion>
        {props.tokens.length === 0 ? <p class="muted">No API tokens yet.</p> : null}
        <Pager info={props.info} base="/settings/tokens" />
      </section>
    </SettingsLayout>
  );
}
