import { Csrf, FieldErrors } from "../components";
import { Layout, type PageContext } from "../layout";
import { arr, type EditorState, obj, text } from "./shared";

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
