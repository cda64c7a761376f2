import { Badge, Csrf, type PageInfo, Pager, ScrollRegion, Time } from "../components";
import type { PageContext } from "../layout";
import { SettingsLayout } from "./layout";

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
        <ScrollRegion label="Dashboard users table">
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
        </ScrollRegion>
        <Pager info={props.info} base="/settings/users" />
      </section>
    </SettingsLayout>
  );
}
