import { ActionButton, Csrf, ScrollRegion } from "../components";
import type { PageContext } from "../layout";
import { arr, type EditorState, obj, text } from "./shared";

export function ListsTab(props: { page: PageContext; state: EditorState; editing?: string }) {
  const lists = obj(props.state.policy.lists);
  const admin = props.page.user.role === "admin";
  const editing = props.editing ? obj(lists[props.editing]) : null;
  return (
    <>
      <section class="panel">
        <h2>Lists</h2>
        <p class="muted">Rules refer to a list as @name. A list holds domains and/or client CIDRs.</p>
        <ScrollRegion label="Lists table">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th class="num">Domains</th>
                <th class="num">CIDRs</th>
                <th>First entries</th>
                {admin ? <th /> : null}
              </tr>
            </thead>
            <tbody>
              {Object.entries(lists).map(([name, value]) => {
                const l = obj(value);
                const errors = props.state.issues.under(`lists.${name}`);
                return (
                  <tr class={errors.length ? "has-error" : ""}>
                    <td>
                      <code>@{name}</code>
                      {errors.slice(0, 5).map((e) => (
                        <p class="field-error">
                          {e.rest}: {e.message}
                        </p>
                      ))}
                    </td>
                    <td class="num">{arr(l.domains).length.toLocaleString("en")}</td>
                    <td class="num">{arr(l.cidrs).length.toLocaleString("en")}</td>
                    <td class="muted">{[...arr(l.domains), ...arr(l.cidrs)].slice(0, 4).join(", ")}</td>
                    {admin ? (
                      <td>
                        <div class="actions">
                          <a class="button small" href={`/policy?tab=lists&list=${encodeURIComponent(name)}`}>
                            Edit
                          </a>
                          <ActionButton
                            action="/policy/lists/delete"
                            csrf={props.page.csrf}
                            label="Delete"
                            danger
                            fields={{ name }}
                            confirm={`Delete list ${name}?`}
                          />
                        </div>
                      </td>
                    ) : null}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </ScrollRegion>
      </section>
      {admin ? (
        <section class="panel">
          <h2>{editing ? `Edit list @${props.editing}` : "Add or replace a list"}</h2>
          <form method="post" action="/policy/lists" enctype="multipart/form-data" class="stack">
            <Csrf token={props.page.csrf} />
            <label>
              Name
              <input name="name" required value={props.editing ?? ""} readonly={Boolean(editing)} />
            </label>
            <label>
              Domains, one per line (paste thousands at once; hosts-file lines work)
              <textarea name="domains" rows={10} class="mono">
                {editing ? text(editing.domains) : ""}
              </textarea>
            </label>
            <label>
              …or upload a text file of domains
              <input type="file" name="file" accept=".txt,.list,.csv,text/plain" />
            </label>
            <label>
              Client CIDRs, one per line
              <textarea name="cidrs" rows={3} class="mono">
                {editing ? text(editing.cidrs) : ""}
              </textarea>
            </label>
            <button type="submit" class="primary">
              Save list to draft
            </button>
          </form>
        </section>
      ) : null}
    </>
  );
}
