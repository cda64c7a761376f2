import type { Child } from "hono/jsx";
import type { IssueIndex } from "../routes/dashboard/policy-forms";
import { ActionButton, Badge, Csrf, FieldErrors, Notice, Time } from "./components";
import { Layout, type PageContext } from "./layout";

type Obj = Record<string, unknown>;

export interface EditorState {
  policy: Obj;
  baseVersion: number | null;
  latestVersion: number | null;
  edited: boolean;
  updatedAt: number | null;
  updatedBy: string | null;
  issues: IssueIndex;
}

const TABS = [
  ["rules", "Rules"],
  ["lists", "Lists"],
  ["schedules", "Schedules"],
  ["access", "Access list"],
  ["users", "Proxy users"],
  ["settings", "Default, block page, logging"],
  ["json", "JSON"],
] as const;

export type PolicyTab = (typeof TABS)[number][0];

const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const obj = (v: unknown): Obj => (v && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {});
const text = (v: unknown) => arr(v).map(String).join("\n");

export function PolicyNav(props: { current: string }) {
  return (
    <nav class="tabs" aria-label="Policy">
      <a href="/policy" aria-current={props.current === "/policy" ? "page" : undefined}>
        Edit draft
      </a>
      <a href="/policy/history" aria-current={props.current === "/policy/history" ? "page" : undefined}>
        History and diff
      </a>
      <a href="/policy/test" aria-current={props.current === "/policy/test" ? "page" : undefined}>
        Test a request
      </a>
    </nav>
  );
}

export function PolicyEditor(props: {
  page: PageContext;
  state: EditorState;
  tab: PolicyTab;
  notice?: string;
  error?: string;
  body: Child;
}) {
  const { state, page } = props;
  const admin = page.user.role === "admin";
  const issues = state.issues.all;
  return (
    <Layout title="Policy" section="/policy" page={page}>
      <h1>Policy</h1>
      <PolicyNav current="/policy" />
      {props.notice ? <Notice kind="ok">{props.notice}</Notice> : null}
      {props.error ? <Notice kind="error">{props.error}</Notice> : null}
      <section class="panel">
        <p>
          {state.edited ? (
            <>
              <strong>Unpublished draft</strong> based on v{state.baseVersion ?? "–"}, last changed{" "}
              <Time at={state.updatedAt} /> by {state.updatedBy}.
            </>
          ) : (
            <>
              {state.latestVersion === null
                ? "Nothing published yet; this is a starter policy."
                : `No unpublished changes: this is v${state.latestVersion}.`}
            </>
          )}
          {state.edited && state.latestVersion !== null && state.baseVersion !== state.latestVersion ? (
            <span class="badge warn"> v{state.latestVersion} was published since this draft started</span>
          ) : null}
        </p>
        <div data-testid="validation">
          {issues.length === 0 ? (
            <p>
              <Badge value="valid" /> The draft validates.
            </p>
          ) : (
            <div class="notice error" role="alert">
              <strong>
                {issues.length} problem{issues.length > 1 ? "s" : ""}: fix them before publishing.
              </strong>
              <ul>
                {issues.slice(0, 20).map((i) => (
                  <li>
                    <code>{i.path || "policy"}</code> {i.message}
                  </li>
                ))}
              </ul>
            </div>
          )}
        </div>
        {admin ? (
          <div class="row">
            <form method="post" action="/policy/publish" class="row" data-testid="publish-form">
              <Csrf token={page.csrf} />
              <label>
                Publish message
                <input name="message" required maxlength={500} placeholder="what changed and why" />
              </label>
              <button
                type="submit"
                class="primary"
                disabled={issues.length > 0 || (!state.edited && state.latestVersion !== null)}
              >
                Publish
              </button>
            </form>
            {state.edited ? (
              <ActionButton
                action="/policy/discard"
                csrf={page.csrf}
                label="Discard draft"
                danger
                confirm="Throw away every unpublished change?"
              />
            ) : null}
          </div>
        ) : null}
      </section>
      <nav class="tabs" aria-label="Policy sections">
        {TABS.map(([id, label]) => (
          <a href={`/policy?tab=${id}`} aria-current={props.tab === id ? "page" : undefined}>
            {label}
            {sectionIssues(state.issues, id) ? (
              <span class="badge bad">{sectionIssues(state.issues, id)}</span>
            ) : null}
          </a>
        ))}
      </nav>
      {props.body}
    </Layout>
  );
}

function sectionIssues(issues: IssueIndex, tab: PolicyTab): number {
  const prefix: Record<PolicyTab, string[]> = {
    rules: ["rules"],
    lists: ["lists"],
    schedules: ["schedules"],
    access: ["access"],
    users: ["auth"],
    settings: ["defaultAction", "blockPage", "logging"],
    json: [],
  };
  return prefix[tab].reduce((n, p) => n + issues.under(p).length, 0);
}

function matchSummary(match: Obj): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(match)) {
    const values = Array.isArray(v) ? v : [v];
    const shown = values.slice(0, 3).join(", ");
    parts.push(`${k}: ${shown}${values.length > 3 ? ` (+${values.length - 3})` : ""}`);
  }
  return parts.length ? parts.join("; ") : "every request";
}

export function RulesTab(props: { page: PageContext; state: EditorState }) {
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
      <div class="table-wrap">
        <table data-testid="rules">
          <thead>
            <tr>
              <th>#</th>
              <th>Id</th>
              <th>Name</th>
              <th>Action</th>
              <th>Match</th>
              <th>State</th>
              {admin ? <th /> : null}
            </tr>
          </thead>
          <tbody>
            {rules.map((r, i) => {
              const errors = props.state.issues.under(`rules[${i}]`);
              const enabled = r.enabled !== false;
              return (
                <tr class={`${enabled ? "" : "disabled"} ${errors.length ? "has-error" : ""}`}>
                  <td>{i + 1}</td>
                  <td>
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
                  {admin ? (
                    <td>
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
      </div>
      {rules.length === 0 ? (
        <p class="muted">
          No rules: every request gets the default action (
          {String(props.state.policy.defaultAction ?? "allow")}).
        </p>
      ) : null}
    </section>
  );
}

export function RuleForm(props: {
  page: PageContext;
  state: EditorState;
  index: number | null;
  schedules: string[];
  lists: string[];
}) {
  const rules = arr(props.state.policy.rules).map(obj);
  const rule = props.index === null ? { action: "block", match: {} } : (rules[props.index] ?? {});
  const match = obj(rule.match);
  const prefix = `rules[${props.index ?? rules.length}]`;
  const err = (f: string) => (props.index === null ? [] : props.state.issues.field(prefix, f));
  const invalid = (name: string) => (err(name).length ? "true" : undefined);
  const field = (name: string, label: string, value: string, hint?: string, area = false) =>
    area ? (
      <label>
        {label}
        <textarea name={name} rows={4} class="mono" aria-invalid={invalid(name)}>
          {value}
        </textarea>
        <FieldErrors messages={err(name)} />
      </label>
    ) : (
      <label>
        {label}
        <input name={name} value={value} aria-invalid={invalid(name)} />
        {hint ? <span class="muted">{hint}</span> : null}
        <FieldErrors messages={err(name)} />
      </label>
    );
  const schemes = arr(match.schemes).map(String);
  return (
    <Layout title="Rule" section="/policy" page={props.page}>
      <p>
        <a href="/policy?tab=rules">← Rules</a>
      </p>
      <h1>{props.index === null ? "New rule" : `Rule ${props.index + 1}: ${String(rule.id ?? "")}`}</h1>
      <form
        method="post"
        action={props.index === null ? "/policy/rules/new" : `/policy/rules/${props.index}`}
        class="stack panel"
        data-testid="rule-form"
      >
        <Csrf token={props.page.csrf} />
        <div class="row">
          {field("id", "Id (letters, digits, - and _)", String(rule.id ?? ""))}
          {field("name", "Name", String(rule.name ?? ""))}
          <label>
            Action
            <select name="action">
              <option value="block" selected={rule.action !== "allow"}>
                block
              </option>
              <option value="allow" selected={rule.action === "allow"}>
                allow
              </option>
            </select>
          </label>
          <label class="check">
            <input type="checkbox" name="enabled" value="1" checked={rule.enabled !== false} /> enabled
          </label>
        </div>
        <p class="muted">
          Match: every filled field must match (AND); values inside a field are alternatives (OR). Empty
          fields match everything.
          {props.lists.length ? ` Lists: ${props.lists.map((l) => `@${l}`).join(", ")}.` : ""}
        </p>
        {field(
          "domains",
          "Domains, one per line (example.com, =exact.com, *.sub.com, @list)",
          text(match.domains),
          undefined,
          true,
        )}
        {field("clients", "Clients: addresses, CIDRs or @list", text(match.clients), undefined, true)}
        <div class="row">
          {field("users", "Users", arr(match.users).join(", "))}
          {field("groups", "Groups", arr(match.groups).join(", "))}
          {field("methods", "Methods", arr(match.methods).join(", "), "GET, POST, CONNECT…")}
          {field("ports", "Ports", arr(match.ports).join(", "))}
        </div>
        <fieldset>
          <legend>Schemes</legend>
          {["http", "https", "connect"].map((s) => (
            <label class="check">
              <input type="checkbox" name="schemes" value={s} checked={schemes.includes(s)} /> {s}
            </label>
          ))}
          <FieldErrors messages={err("schemes")} />
        </fieldset>
        <label>
          Schedule
          <select name="schedule" aria-invalid={err("schedule").length ? "true" : undefined}>
            <option value="">any time</option>
            {[...new Set([...props.schedules, ...(match.schedule ? [String(match.schedule)] : [])])].map(
              (s) => (
                <option value={s} selected={match.schedule === s}>
                  {s}
                </option>
              ),
            )}
          </select>
          <FieldErrors messages={err("schedule")} />
        </label>
        {field("urlRegex", "URL regular expression (plain HTTP only)", String(match.urlRegex ?? ""))}
        {field("message", "Message on the block page", String(rule.message ?? ""))}
        <button type="submit" class="primary">
          Save rule to draft
        </button>
      </form>
    </Layout>
  );
}

export function ListsTab(props: { page: PageContext; state: EditorState; editing?: string }) {
  const lists = obj(props.state.policy.lists);
  const admin = props.page.user.role === "admin";
  const editing = props.editing ? obj(lists[props.editing]) : null;
  return (
    <>
      <section class="panel">
        <h2>Lists</h2>
        <p class="muted">Rules refer to a list as @name. A list holds domains and/or client CIDRs.</p>
        <div class="table-wrap">
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
        </div>
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

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

export function SchedulesTab(props: { page: PageContext; state: EditorState; editing?: string }) {
  const schedules = obj(props.state.policy.schedules);
  const admin = props.page.user.role === "admin";
  const editing = props.editing ? obj(schedules[props.editing]) : null;
  const days = editing ? arr(editing.days).map(String) : ["mon", "tue", "wed", "thu", "fri"];
  return (
    <>
      <section class="panel">
        <h2>Schedules</h2>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Time zone</th>
                <th>Days</th>
                <th>From</th>
                <th>To</th>
                {admin ? <th /> : null}
              </tr>
            </thead>
            <tbody>
              {Object.entries(schedules).map(([name, value]) => {
                const s = obj(value);
                const errors = props.state.issues.under(`schedules.${name}`);
                return (
                  <tr class={errors.length ? "has-error" : ""}>
                    <td>
                      {name}
                      {errors.map((e) => (
                        <p class="field-error">
                          {e.rest}: {e.message}
                        </p>
                      ))}
                    </td>
                    <td>{String(s.tz ?? "")}</td>
                    <td>{arr(s.days).join(", ")}</td>
                    <td>{String(s.from ?? "")}</td>
                    <td>{String(s.to ?? "")}</td>
                    {admin ? (
                      <td>
                        <div class="actions">
                          <a
                            class="button small"
                            href={`/policy?tab=schedules&schedule=${encodeURIComponent(name)}`}
                          >
                            Edit
                          </a>
                          <ActionButton
                            action="/policy/schedules/delete"
                            csrf={props.page.csrf}
                            label="Delete"
                            danger
                            fields={{ name }}
                          />
                        </div>
                      </td>
                    ) : null}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      </section>
      {admin ? (
        <section class="panel">
          <h2>{editing ? `Edit schedule ${props.editing}` : "Add a schedule"}</h2>
          <form method="post" action="/policy/schedules" class="stack">
            <Csrf token={props.page.csrf} />
            <div class="row">
              <label>
                Name
                <input name="name" required value={props.editing ?? ""} readonly={Boolean(editing)} />
              </label>
              <label>
                Time zone (IANA)
                <input name="tz" required value={String(editing?.tz ?? "UTC")} />
              </label>
              <label>
                From
                <input name="from" type="time" required value={String(editing?.from ?? "09:00")} />
              </label>
              <label>
                To (24:00 = midnight)
                <input name="to" required pattern="\d\d:\d\d" value={String(editing?.to ?? "17:00")} />
              </label>
            </div>
            <fieldset>
              <legend>Days</legend>
              {DAYS.map((d) => (
                <label class="check">
                  <input type="checkbox" name="days" value={d} checked={days.includes(d)} /> {d}
                </label>
              ))}
            </fieldset>
            <button type="submit" class="primary">
              Save schedule to draft
            </button>
          </form>
        </section>
      ) : null}
    </>
  );
}

export function AccessTab(props: { page: PageContext; state: EditorState }) {
  const clients = arr(obj(props.state.policy.access).clients);
  const admin = props.page.user.role === "admin";
  const errors = props.state.issues.under("access").map((e) => `${e.rest}: ${e.message}`);
  return (
    <section class="panel">
      <h2>Access list</h2>
      <p class="muted">
        Clients outside these addresses get 403 before any rule. Empty: every client may use the proxy.
      </p>
      <form method="post" action="/policy/access" class="stack">
        <Csrf token={props.page.csrf} />
        <label>
          Client addresses, CIDRs or @lists, one per line
          <textarea
            name="clients"
            rows={8}
            class="mono"
            disabled={!admin}
            aria-invalid={errors.length ? "true" : undefined}
          >
            {clients.join("\n")}
          </textarea>
          <FieldErrors messages={errors} />
        </label>
        {admin ? (
          <button type="submit" class="primary">
            Save access list to draft
          </button>
        ) : null}
      </form>
    </section>
  );
}

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
        <div class="table-wrap">
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
        </div>
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

export function SettingsTab(props: { page: PageContext; state: EditorState }) {
  const p = props.state.policy;
  const block = obj(p.blockPage);
  const logging = obj(p.logging);
  const admin = props.page.user.role === "admin";
  const err = (prefix: string) =>
    props.state.issues.under(prefix).map((e) => `${e.rest || prefix}: ${e.message}`);
  return (
    <section class="panel">
      <form method="post" action="/policy/settings" class="stack">
        <Csrf token={props.page.csrf} />
        <label>
          Default action (when no rule matches)
          <select name="defaultAction" disabled={!admin}>
            <option value="allow" selected={p.defaultAction !== "block"}>
              allow
            </option>
            <option value="block" selected={p.defaultAction === "block"}>
              block
            </option>
          </select>
          <FieldErrors messages={err("defaultAction")} />
        </label>
        <label>
          Block page title
          <input name="title" value={String(block.title ?? "Blocked by policy")} disabled={!admin} />
        </label>
        <label>
          Block page text
          <textarea name="body" rows={4} disabled={!admin}>
            {String(block.body ?? "")}
          </textarea>
          <FieldErrors messages={err("blockPage")} />
        </label>
        <label class="check">
          <input
            type="checkbox"
            name="includeQuery"
            value="1"
            checked={logging.includeQuery === true}
            disabled={!admin}
          />{" "}
          Log query strings
        </label>
        {admin ? (
          <button type="submit" class="primary">
            Save to draft
          </button>
        ) : null}
      </form>
    </section>
  );
}

export function JsonTab(props: { page: PageContext; state: EditorState; raw?: string }) {
  const admin = props.page.user.role === "admin";
  const raw = props.raw ?? JSON.stringify(props.state.policy, null, 2);
  return (
    <section class="panel">
      <h2>JSON</h2>
      <p class="muted">The draft as the policy language (docs/policy.md). Saving replaces the whole draft.</p>
      <form method="post" action="/policy/json" class="stack">
        <Csrf token={props.page.csrf} />
        <textarea name="json" rows={24} class="mono" readonly={!admin}>
          {raw.length > 2_000_000 ? `${raw.slice(0, 2_000_000)}\n… (truncated)` : raw}
        </textarea>
        {admin ? (
          <button type="submit" class="primary">
            Replace draft with this JSON
          </button>
        ) : null}
      </form>
    </section>
  );
}
