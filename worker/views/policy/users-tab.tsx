import { ActionButton, Csrf, FieldErrors, ScrollRegion } from "../components";
import type { PageContext } from "../layout";
import { arr, type EditorState, obj } from "./shared";

export function UsersTab(props: { page: PageContext; state: EditorState }) {
  const auth = obj(props.state.policy.auth);
  const users = arr(auth.users).map(obj);
  const admin = props.page.user.role === "admin";
  const csrf = props.page.csrf;
  return (
    <>
      <section class="panel">
        <h2>Proxy authentication</h2>
        <form method="post" action="/policy/auth" class="row">
          <Csrf token={csrf} />
          <label class="check">
            <input
              type="checkbox"
              name="required"
              value="1"
              checked={auth.required === true}
              disabled={!admin}
            />{" "}
            Require a user name and password (407)
          </label>
          <label>
            Realm
            <input name="realm" value={String(auth.realm ?? "Fleetgate")} disabled={!admin} />
            <FieldErrors messages={props.state.issues.under("auth.realm").map((e) => e.message)} />
          </label>
          {admin ? <button type="submit">Save</button> : null}
        </form>
      </section>
      <section class="panel">
        <h2>Proxy users</h2>
        <ScrollRegion label="Proxy users table">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Groups</th>
                <th>Password</th>
                {admin ? <th /> : null}
              </tr>
            </thead>
            <tbody>
              {users.map((u, i) => {
                const errors = props.state.issues.under(`auth.users[${i}]`);
                return (
                  <tr class={errors.length ? "has-error" : ""}>
                    <td>
                      {String(u.name ?? "")}
                      {errors.map((e) => (
                        <p class="field-error">
                          {e.rest}: {e.message}
                        </p>
                      ))}
                    </td>
                    <td>{arr(u.groups).join(", ")}</td>
                    <td class="muted">set (PBKDF2-SHA256)</td>
                    {admin ? (
                      <td>
                        <ActionButton
                          action="/policy/users/delete"
                          csrf={csrf}
                          label="Delete"
                          danger
                          fields={{ name: String(u.name ?? "") }}
                        />
                      </td>
                    ) : null}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </ScrollRegion>
        {users.length === 0 ? <p class="muted">No proxy users.</p> : null}
      </section>
      {admin ? (
        <section class="panel">
          <h2>Add a user or set a password</h2>
          <form method="post" action="/policy/users" class="row">
            <Csrf token={csrf} />
            <label>
              Name
              <input name="name" required autocomplete="off" />
            </label>
            <label>
              Password (hashed on the master)
              <input name="password" type="password" required autocomplete="new-password" />
            </label>
            <label>
              Groups (comma-separated)
              <input name="groups" />
            </label>
            <button type="submit" class="primary">
              Save user to draft
            </button>
          </form>
        </section>
      ) : null}
    </>
  );
}
