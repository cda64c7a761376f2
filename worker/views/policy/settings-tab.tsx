import { Csrf, FieldErrors } from "../components";
import type { PageContext } from "../layout";
import { type EditorState, obj } from "./shared";

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
