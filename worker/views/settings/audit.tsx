import { Time } from "../components";
import type { PageContext } from "../layout";
import { SettingsLayout } from "./layout";

export interface AuditRow {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  before: unknown;
  after: unknown;
  address: string | null;
}

const pretty = (v: unknown) => JSON.stringify(v, null, 2);

export function AuditPage(props: {
  page: PageContext;
  entries: AuditRow[];
  next?: number;
  actors: Record<string, string>;
}) {
  return (
    <SettingsLayout page={props.page} tab="/settings/audit" title="Audit log">
      <section class="panel">
        <section class="table-wrap" tabindex={0} aria-label="Audit log table">
          <table>
            <thead>
              <tr>
                <th>When</th>
                <th>Who</th>
                <th>What</th>
                <th>Target</th>
                <th>Change</th>
              </tr>
            </thead>
            <tbody>
              {props.entries.map((e) => (
                <tr>
                  <td>
                    <Time at={e.at} />
                  </td>
                  <td>
                    {props.actors[e.actor] ?? e.actor}
                    {e.address ? <div class="muted">{e.address}</div> : null}
                  </td>
                  <td>{e.action}</td>
                  <td>{e.target ?? "–"}</td>
                  <td>
                    {e.before != null || e.after != null ? (
                      <details>
                        <summary>before / after</summary>
                        <div class="grid">
                          <div>
                            <h3>Before</h3>
                            <pre>{e.before == null ? "–" : pretty(e.before).slice(0, 20_000)}</pre>
                          </div>
                          <div>
                            <h3>After</h3>
                            <pre>{e.after == null ? "–" : pretty(e.after).slice(0, 20_000)}</pre>
                          </div>
                        </div>
                      </details>
                    ) : (
                      "–"
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <nav class="pager">
          <a href="/settings/audit">Newest</a>
          {props.next ? (
            <a href={`/settings/audit?before=${props.next}`}>Older →</a>
          ) : (
            <span class="muted">No older entries</span>
          )}
        </nav>
      </section>
    </SettingsLayout>
  );
}
