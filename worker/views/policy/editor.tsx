import type { Child } from "hono/jsx";
import type { IssueIndex } from "../../routes/dashboard/policy-forms";
import type { SectionDiff } from "../../services/policy-diff";
import { ActionButton, Badge, Csrf, Notice, Time } from "../components";
import { Layout, type PageContext } from "../layout";
import { DiffSections } from "./diff";
import { PolicyNav } from "./nav";
import { type EditorState, type PolicyTab, TABS } from "./shared";

export function PolicyEditor(props: {
  page: PageContext;
  state: EditorState;
  tab: PolicyTab;
  notice?: string;
  error?: string;
  body: Child;
  /** The draft against the latest published version (only when the draft was edited). */
  diff?: { against: number | null; sections: SectionDiff[] } | null;
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
          ) : state.latestVersion === null ? (
            "Nothing published yet; this is a starter policy."
          ) : (
            `No unpublished changes: this is v${state.latestVersion}.`
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
      {state.edited && props.diff ? (
        <section class="panel diff" data-testid="draft-diff">
          <details open={props.diff.sections.length <= 12}>
            <summary>
              <strong>
                Draft against {props.diff.against === null ? "nothing published" : `v${props.diff.against}`}:{" "}
                {props.diff.sections.reduce((n, s) => n + s.changes.length, 0)} change(s)
              </strong>
            </summary>
            <DiffSections sections={props.diff.sections} />
          </details>
        </section>
      ) : null}
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
