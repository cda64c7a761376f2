import { Csrf, FieldErrors } from "../components";
import type { PageContext } from "../layout";
import { arr, type EditorState, obj } from "./shared";

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
