import type { SectionDiff } from "../services/policy-diff";
import { ActionButton, Csrf, Notice, ScrollRegion, Time } from "./components";
import { Layout, type PageContext } from "./layout";
import { PolicyNav } from "./policy";
import { DiffSections } from "./policy/diff";

export interface VersionRow {
  version: number;
  hash: string;
  size: number;
  message: string;
  createdBy: string;
  createdAt: number;
  rollbackOf: number | null;
}

export function HistoryPage(props: {
  page: PageContext;
  versions: VersionRow[];
  latest: number | null;
  diff: { from: number; to: number; sections: SectionDiff[] } | null;
  older?: number;
  notice?: string;
  actors: Record<string, string>;
  /** After a publish: how many live nodes run it (refreshed by the page script). */
  applied?: { version: number; applied: number; rejected: number; total: number };
}) {
  const admin = props.page.user.role === "admin";
  const all = props.versions.map((v) => v.version);
  return (
    <Layout title="Policy history" section="/policy" page={props.page}>
      <h1>Policy</h1>
      <PolicyNav current="/policy/history" />
      {props.notice ? <Notice kind="ok">{props.notice}</Notice> : null}
      {props.applied ? <AppliedLine {...props.applied} /> : null}
      {/* Slot: the rollout panel of the sites and rollout work (issue 15) goes here. */}
      {props.latest === null ? (
        <p class="panel muted">Nothing published yet.</p>
      ) : (
        <>
          <section class="panel">
            <h2>Compare two versions</h2>
            <form method="get" action="/policy/history" class="row">
              <label>
                From
                <select name="from">
                  {all.map((v) => (
                    <option value={String(v)} selected={props.diff?.from === v}>
                      v{v}
                    </option>
                  ))}
                </select>
              </label>
              <label>
                To
                <select name="to">
                  {all.map((v) => (
                    <option value={String(v)} selected={props.diff?.to === v}>
                      v{v}
                    </option>
                  ))}
                </select>
              </label>
              <button type="submit">Show diff</button>
            </form>
            {props.diff ? (
              <div class="diff" data-testid="diff">
                <h3>
                  v{props.diff.from} → v{props.diff.to}
                </h3>
                <DiffSections sections={props.diff.sections} />
              </div>
            ) : null}
          </section>
          <section class="panel">
            <h2>Versions</h2>
            <ScrollRegion label="Versions table">
              <table data-testid="versions">
                <thead>
                  <tr>
                    <th>Version</th>
                    <th>Message</th>
                    <th>By</th>
                    <th>When</th>
                    <th class="num">Size</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {props.versions.map((v, i) => (
                    <tr>
                      <td>
                        v{v.version}
                        {v.version === props.latest ? <span class="badge ok">latest</span> : null}
                      </td>
                      <td>
                        {v.message}
                        {v.rollbackOf ? <span class="muted"> (rollback to v{v.rollbackOf})</span> : null}
                      </td>
                      <td>{props.actors[v.createdBy] ?? v.createdBy}</td>
                      <td>
                        <Time at={v.createdAt} />
                      </td>
                      <td class="num">{v.size.toLocaleString("en")}</td>
                      <td>
                        <div class="actions">
                          {props.versions[i + 1] ? (
                            <a
                              class="button small"
                              href={`/policy/history?from=${props.versions[i + 1]?.version}&to=${v.version}`}
                            >
                              Diff
                            </a>
                          ) : null}
                          {admin && v.version !== props.latest ? (
                            <ActionButton
                              action={`/policy/versions/${v.version}/rollback`}
                              csrf={props.page.csrf}
                              label={`Roll back to v${v.version}`}
                              confirm={`Publish v${v.version}'s content as a new version?`}
                            />
                          ) : null}
                        </div>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </ScrollRegion>
            <nav class="pager">
              <a href="/policy/history">Newest</a>
              {props.older ? <a href={`/policy/history?before=${props.older}`}>Older →</a> : null}
            </nav>
          </section>
        </>
      )}
    </Layout>
  );
}

function AppliedLine(props: { version: number; applied: number; rejected: number; total: number }) {
  return (
    <p
      class="panel"
      role="status"
      aria-live="polite"
      data-applied={`/policy/applied?version=${props.version}`}
      data-testid="applied"
    >
      v{props.version} applied on <strong data-key="applied">{props.applied}</strong> of{" "}
      <strong data-key="total">{props.total}</strong> nodes
      <span data-key="rejected-text">{props.rejected ? `, ${props.rejected} rejected it` : ""}</span>.{" "}
      <a href={`/policy/history?published=${props.version}`}>Refresh</a>{" "}
      <a href="/nodes?sync=behind">Nodes still behind</a>
    </p>
  );
}

export interface SimulationView {
  action: string;
  reason: string;
  rule?: { id: string; name?: string; message?: string };
  trace?: { step: string; result: string; detail: string }[];
  facts: Record<string, unknown>;
  version: number | null;
}

export function TestPage(props: {
  page: PageContext;
  form: Record<string, string>;
  result?: SimulationView;
  error?: string;
  hasDraft: boolean;
}) {
  const f = props.form;
  const r = props.result;
  return (
    <Layout title="Test a request" section="/policy" page={props.page}>
      <h1>Policy</h1>
      <PolicyNav current="/policy/test" />
      <section class="panel">
        <h2>Test a request</h2>
        <p class="muted">Describe a request; see which rule decides and why. Nothing is changed.</p>
        {props.error ? <Notice kind="error">{props.error}</Notice> : null}
        <form method="post" action="/policy/test" class="stack" data-testid="test-form">
          <Csrf token={props.page.csrf} />
          <div class="row">
            <label>
              URL
              <input name="url" required value={f.url ?? "https://example.com/"} />
            </label>
            <label>
              Client address
              <input name="client" required value={f.client ?? "10.0.0.10"} />
            </label>
            <label>
              Method
              <input name="method" value={f.method ?? "GET"} />
            </label>
          </div>
          <div class="row">
            <label>
              User (authenticated)
              <input name="user" value={f.user ?? ""} />
            </label>
            <label>
              Groups
              <input name="groups" value={f.groups ?? ""} />
            </label>
            <label>
              At (UTC; empty: now)
              <input name="at" type="datetime-local" value={f.at ?? ""} />
            </label>
            <label>
              Against
              <select name="target">
                <option value="latest" selected={f.target !== "draft"}>
                  latest published version
                </option>
                {props.hasDraft ? (
                  <option value="draft" selected={f.target === "draft"}>
                    the unpublished draft
                  </option>
                ) : null}
              </select>
            </label>
          </div>
          <button type="submit" class="primary">
            Test
          </button>
        </form>
      </section>
      {r ? (
        <section class="panel" data-testid="test-result">
          <h2>
            Decision: <span class={`badge ${r.action === "allow" ? "ok" : "bad"}`}>{r.action}</span>
          </h2>
          <p>
            {r.reason === "rule" && r.rule ? (
              <>
                Rule <code>{r.rule.id}</code>
                {r.rule.name ? ` (${r.rule.name})` : ""} decides.
                {r.rule.message ? <span class="muted"> Message: {r.rule.message}</span> : null}
              </>
            ) : r.reason === "default" ? (
              "No rule matched: the default action applies."
            ) : r.reason === "access-list" ? (
              "The client is outside the access list."
            ) : (
              "The proxy asks for credentials first."
            )}{" "}
            {r.version ? (
              <span class="muted">(policy v{r.version})</span>
            ) : (
              <span class="muted">(draft)</span>
            )}
          </p>
          <h3>Why</h3>
          <ol class="trace">
            {(r.trace ?? []).map((t) => (
              <li>
                <code>{t.step}</code> <strong>{t.result}</strong> — {t.detail}
              </li>
            ))}
          </ol>
          <details>
            <summary>What the proxy sees</summary>
            <pre>{JSON.stringify(r.facts, null, 2)}</pre>
          </details>
        </section>
      ) : null}
    </Layout>
  );
}
