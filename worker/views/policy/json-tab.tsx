import { Csrf } from "../components";
import type { PageContext } from "../layout";
import type { EditorState } from "./shared";

export function JsonTab(props: { page: PageContext; state: EditorState; raw?: string }) {
  const admin = props.page.user.role === "admin";
  const raw = props.raw ?? JSON.stringify(props.state.policy, null, 2);
  return (
    <section class="panel">
      <h2>JSON</h2>
      <p class="muted">The draft as the policy language (docs/policy.md). Saving replaces the whole draft.</p>
      <form method="post" action="/policy/json" class="stack">
        <Csrf token={props.page.csrf} />
        <label for="policy-json">Policy JSON</label>
        <textarea id="policy-json" name="json" rows={24} class="mono" readonly={!admin}>
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
