import { ActionButton, Badge, ScrollRegion } from "../components";
import type { PageContext } from "../layout";
import { arr, type EditorState, type Obj, obj } from "./shared";

function matchSummary(match: Obj): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(match)) {
    const values = Array.isArray(v) ? v : [v];
    const shown = values.slice(0, 3).join(", ");
    parts.push(`${k}: ${shown}${values.length > 3 ? ` (+${values.length - 3})` : ""}`);
  }
  return parts.length ? parts.join("; ") : "every request";
}

/** Rule id → requests it decided in the last 24 h (fleet rollups); null when reports are unavailable. */
export type RuleHits = Record<string, number> | null;

export function RulesTab(props: { page: PageContext; state: EditorState; hits?: RuleHits }) {
  const hits = props.hits ?? null;
  const rules = arr(props.state.policy.rules).map(obj);
  const admin = props.page.user.role === "admin";
  const csrf = props.page.csrf;
  return (
    <section class="panel">
      <div class="row">
        <h2>Rules (first match wins)</h2>
        {admin ? (
          <a class="button primary" href="/policy/rules/new">
            Add rule
          </a>
        ) : null}
      </div>
      <ScrollRegion label="Rules table">
        <table data-testid="rules">
          <thead>
            <tr>
              <th>#</th>
              <th>Id</th>
              <th>Name</th>
              <th>Action</th>
              <th>Match</th>
              <th>State</th>
              <th class="num" title="Requests this rule decided in the last 24 hours, whole fleet">
                Hits (24 h)
              </th>
              {admin ? (
                <th class="row-actions">
                  <span class="sr-only">Actions</span>
                </th>
              ) : null}
            </tr>
          </thead>
          <tbody>
            {rules.map((r, i) => {
              const errors = props.state.issues.under(`rules[${i}]`);
              const enabled = r.enabled !== false;
              return (
                <tr class={`${enabled ? "" : "disabled"} ${errors.length ? "has-error" : ""}`}>
                  <td>{i + 1}</td>
                  <td class="key">
                    <code>{String(r.id ?? "")}</code>
                  </td>
                  <td>
                    {String(r.name ?? "")}
                    {errors.map((e) => (
                      <p class="field-error">
                        {e.rest ? `${e.rest}: ` : ""}
                        {e.message}
                      </p>
                    ))}
                  </td>
                  <td>
                    <Badge value={String(r.action ?? "?")} />
                  </td>
                  <td>{matchSummary(obj(r.match))}</td>
                  <td>{enabled ? "enabled" : "disabled"}</td>
                  <td class="num hits" data-testid={`hits-${String(r.id ?? "")}`}>
                    {hits === null ? "–" : (hits[String(r.id ?? "")] ?? 0).toLocaleString("en")}
                  </td>
                  {admin ? (
                    <td class="row-actions">
                      <div class="actions">
                        <a class="button small" href={`/policy/rules/${i}`}>
                          Edit
                        </a>
                        {i > 0 ? (
                          <ActionButton
                            action={`/policy/rules/${i}/move`}
                            csrf={csrf}
                            label="↑"
                            fields={{ to: String(i - 1) }}
                          />
                        ) : null}
                        {i < rules.length - 1 ? (
                          <ActionButton
                            action={`/policy/rules/${i}/move`}
                            csrf={csrf}
                            label="↓"
                            fields={{ to: String(i + 1) }}
                          />
                        ) : null}
                        <ActionButton
                          action={`/policy/rules/${i}/toggle`}
                          csrf={csrf}
                          label={enabled ? "Disable" : "Enable"}
                        />
                        <ActionButton
                          action={`/policy/rules/${i}/delete`}
                          csrf={csrf}
                          label="Delete"
                          danger
                          confirm={`Delete rule ${String(r.id)}?`}
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
      {rules.length === 0 ? (
        <p class="muted">
          No rules: every request gets the default action (
          {String(props.state.policy.defaultAction ?? "allow")}).
        </p>
      ) : null}
    </section>
  );
}
