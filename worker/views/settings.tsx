import type { Child } from "hono/jsx";
import { ActionButton, Badge, Csrf, Notice, type PageInfo, Pager, Time } from "./components";
import { Layout, type PageContext } from "./layout";

const TABS = [
  { href: "/settings/keys", label: "Enrollment keys" },
  { href: "/settings/allowlist", label: "Agent allow list" },
  { href: "/settings/users", label: "Users and roles" },
  { href: "/settings/tokens", label: "API tokens" },
  { href: "/settings/audit", label: "Audit log" },
];

export function SettingsLayout(props: {
  page: PageContext;
  tab: string;
  title: string;
  notice?: string;
  error?: string;
  children?: Child;
}) {
  return (
    <Layout title={props.title} section="/settings" page={props.page}>
      <h1>Settings</h1>
      <nav class="tabs" aria-label="Settings">
        {TABS.map((t) => (
          <a href={t.href} aria-current={t.href === props.tab ? "page" : undefined}>
            {t.label}
          </a>
        ))}
      </nav>
      {props.notice ? <Notice kind="ok">{props.notice}</Notice> : null}
      {props.error ? <Notice kind="error">{props.error}</Notice> : null}
      {props.children}
    </Layout>
  );
}

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
        <div class="table-wrap">
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
        </div>
        {props.keys.length === 0 ? <p class="muted">No enrollment keys yet.</p> : null}
        <Pager info={props.info} base="/settings/keys" />
      </section>
    </SettingsLayout>
  );
}

export function AllowlistPage(props: {
  page: PageContext;
  enabled: boolean;
  cidrs: string[];
  notice?: string;
  error?: string;
  errors?: string[];
}) {
  const admin = props.page.user.role === "admin";
  return (
    <SettingsLayout
      page={props.page}
      tab="/settings/allowlist"
      title="Agent allow list"
      notice={props.notice}
      error={props.error}
    >
      <section class="panel">
        <p class="muted">
          Only these source addresses may enroll, poll and upload logs (SafeSquid's "Access Restriction →
          Allow list").
        </p>
        <form method="post" action="/settings/allowlist" class="stack">
          <Csrf token={props.page.csrf} />
          <label class="check">
            <input type="checkbox" name="enabled" value="1" checked={props.enabled} disabled={!admin} />{" "}
            Enforce the allow list
          </label>
          <label>
            Addresses and CIDRs, one per line
            <textarea
              name="cidrs"
              rows={8}
              class="mono"
              disabled={!admin}
              aria-invalid={props.errors?.length ? "true" : undefined}
            >
              {props.cidrs.join("\n")}
            </textarea>
          </label>
          {props.errors?.map((e) => (
            <p class="field-error">{e}</p>
          ))}
          {admin ? (
            <button type="submit" class="primary">
              Save allow list
            </button>
          ) : null}
        </form>
      </section>
    </SettingsLayout>
  );
}

export interface UserRowView {
  id: string;
  name: string;
  email: string | null;
  role: "admin" | "viewer";
  hasPassword: boolean;
  disabledAt: number | null;
  lockedUntil: number | null;
  lastLoginAt: number | null;
  createdBy: string;
}

export function UsersPage(props: {
  page: PageContext;
  users: UserRowView[];
  info: PageInfo;
  notice?: string;
  error?: string;
  now: number;
}) {
  const admin = props.page.user.role === "admin";
  return (
    <SettingsLayout
      page={props.page}
      tab="/settings/users"
      title="Users and roles"
      notice={props.notice}
      error={props.error}
    >
      {admin ? (
        <section class="panel">
          <h2>Add a dashboard user</h2>
          <form method="post" action="/settings/users" class="row">
            <Csrf token={props.page.csrf} />
            <label>
              Name
              <input name="name" required maxlength={64} />
            </label>
            <label>
              Role
              <select name="role">
                <option value="viewer">viewer (sees everything, changes nothing)</option>
                <option value="admin">admin</option>
              </select>
            </label>
            <label>
              Password (10+ characters)
              <input name="password" type="password" autocomplete="new-password" required minlength={10} />
            </label>
            <button type="submit" class="primary">
              Add user
            </button>
          </form>
        </section>
      ) : null}
      <section class="panel">
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Role</th>
                <th>Sign-in</th>
                <th>Last login</th>
                <th>State</th>
                {admin ? <th>Change</th> : null}
              </tr>
            </thead>
            <tbody>
              {props.users.map((u) => (
                <tr class={u.disabledAt ? "disabled" : ""}>
                  <td>
                    {u.name}
                    {u.email && u.email !== u.name ? <div class="muted">{u.email}</div> : null}
                  </td>
                  <td>
                    <Badge value={u.role} />
                  </td>
                  <td>
                    {u.hasPassword
                      ? "password"
                      : u.createdBy === "cloudflare-access"
                        ? "Cloudflare Access"
                        : "none"}
                  </td>
                  <td>
                    <Time at={u.lastLoginAt} />
                  </td>
                  <td>
                    {u.disabledAt ? (
                      <Badge value="disabled" />
                    ) : u.lockedUntil && u.lockedUntil > props.now ? (
                      <Badge value="locked" />
                    ) : (
                      <Badge value="active" />
                    )}
                  </td>
                  {admin ? (
                    <td>
                      <form method="post" action={`/settings/users/${u.id}`} class="row">
                        <Csrf token={props.page.csrf} />
                        <label>
                          Role
                          <select name="role">
                            <option value="viewer" selected={u.role === "viewer"}>
                              viewer
                            </option>
                            <option value="admin" selected={u.role === "admin"}>
                              admin
                            </option>
                          </select>
                        </label>
                        <label>
                          New password
                          <input name="password" type="password" autocomplete="new-password" minlength={10} />
                        </label>
                        <label class="check">
                          <input type="checkbox" name="disabled" value="1" checked={u.disabledAt !== null} />{" "}
                          disabled
                        </label>
                        <button type="submit" class="small">
                          Save
                        </button>
                      </form>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <Pager info={props.info} base="/settings/users" />
      </section>
    </SettingsLayout>
  );
}

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
        <div class="table-wrap">
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
        </div>
        {props.tokens.length === 0 ? <p class="muted">No API tokens yet.</p> : null}
        <Pager info={props.info} base="/settings/tokens" />
      </section>
    </SettingsLayout>
  );
}

export interface AuditRow {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  before: unknown;
  after: unknown;
  address: string | null;
}

const pretty = (v: unknown) => JSON.stringify(v, null, 2);

export function AuditPage(props: {
  page: PageContext;
  entries: AuditRow[];
  next?: number;
  actors: Record<string, string>;
}) {
  return (
    <SettingsLayout page={props.page} tab="/settings/audit" title="Audit log">
      <section class="panel">
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th>When</th>
                <th>Who</th>
                <th>What</th>
                <th>Target</th>
                <th>Change</th>
              </tr>
            </thead>
            <tbody>
              {props.entries.map((e) => (
                <tr>
                  <td>
                    <Time at={e.at} />
                  </td>
                  <td>
                    {props.actors[e.actor] ?? e.actor}
                    {e.address ? <div class="muted">{e.address}</div> : null}
                  </td>
                  <td>{e.action}</td>
                  <td>{e.target ?? "–"}</td>
                  <td>
                    {e.before != null || e.after != null ? (
                      <details>
                        <summary>before / after</summary>
                        <div class="grid">
                          <div>
                            <h3>Before</h3>
                            <pre>{e.before == null ? "–" : pretty(e.before).slice(0, 20_000)}</pre>
                          </div>
                          <div>
                            <h3>After</h3>
                            <pre>{e.after == null ? "–" : pretty(e.after).slice(0, 20_000)}</pre>
                          </div>
                        </div>
                      </details>
                    ) : (
                      "–"
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <nav class="pager">
          <a href="/settings/audit">Newest</a>
          {props.next ? (
            <a href={`/settings/audit?before=${props.next}`}>Older →</a>
          ) : (
            <span class="muted">No older entries</span>
          )}
        </nav>
      </section>
    </SettingsLayout>
  );
}
