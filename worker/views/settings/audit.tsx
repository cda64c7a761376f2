import type { AuditEntryView, Named } from "../../services/audit-search";
import { ScrollRegion, Time } from "../components";
import type { PageContext } from "../layout";
import { toLocalInput, useZone } from "../time";
import { SettingsLayout } from "./layout";

/** The filters as the form shows them (times in the person's zone). */
export interface AuditFilterView {
  actor?: string | undefined;
  action?: string | undefined;
  target?: string | undefined;
  from?: number | undefined;
  to?: number | undefined;
}

export const ACTION_PREFIXES = [
  "policy.",
  "rollout.",
  "node.",
  "site.",
  "user.",
  "api-token.",
  "enrollment-key.",
  "settings.",
  "alerts.",
] as const;

function NameLink(props: { named: Named; raw: string }) {
  const n = props.named;
  return (
    <span>
      {n.href ? <a href={n.href}>{n.name}</a> : n.name}
      {n.name !== props.raw ? <div class="muted small">{props.raw}</div> : null}
    </span>
  );
}

function filterQuery(f: AuditFilterView, zone: string, extra: Record<string, string> = {}) {
  const q = new URLSearchParams();
  if (f.actor) q.set("actor", f.actor);
  if (f.action) q.set("action", f.action);
  if (f.target) q.set("target", f.target);
  if (f.from !== undefined) q.set("from", toLocalInput(f.from, zone));
  if (f.to !== undefined) q.set("to", toLocalInput(f.to, zone));
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return q.toString();
}

function AuditFilters(props: { filter: AuditFilterView; actors: { id: string; name: string }[] }) {
  const zone = useZone();
  const f = props.filter;
  return (
    <form method="get" action="/settings/audit" class="row" data-testid="audit-filters">
      <label>
        Who
        <select name="actor">
          <option value="">anyone</option>
          {props.actors.map((a) => (
            <option value={a.id} selected={f.actor === a.id}>
              {a.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        What
        <input
          name="action"
          list="audit-actions"
          value={f.action ?? ""}
          placeholder="policy. or policy.publish"
        />
        <datalist id="audit-actions">
          {ACTION_PREFIXES.map((a) => (
            <option value={a} />
          ))}
        </datalist>
      </label>
      <label>
        Target
        <input name="target" value={f.target ?? ""} placeholder="node_…, usr_…, v12" />
      </label>
      <label>
        From ({zone})
        <input
          type="datetime-local"
          name="from"
          value={f.from === undefined ? "" : toLocalInput(f.from, zone)}
        />
      </label>
      <label>
        To ({zone})
        <input type="datetime-local" name="to" value={f.to === undefined ? "" : toLocalInput(f.to, zone)} />
      </label>
      <button type="submit">Filter</button> <a href="/settings/audit">Clear</a>
    </form>
  );
}

const pretty = (v: unknown) => JSON.stringify(v, null, 2);

export function AuditPage(props: {
  page: PageContext;
  entries: AuditEntryView[];
  next: number | null;
  filter: AuditFilterView;
  actors: { id: string; name: string }[];
  error?: string | undefined;
}) {
  return (
    <SettingsLayout page={props.page} tab="/settings/audit" title="Audit log">
      <AuditBody {...props} />
    </SettingsLayout>
  );
}

function AuditBody(props: Parameters<typeof AuditPage>[0]) {
  const zone = useZone();
  return (
    <>
      <section class="panel">
        <AuditFilters filter={props.filter} actors={props.actors} />
        {props.error ? (
          <p class="notice warn" role="alert">
            {props.error}
          </p>
        ) : null}
      </section>
      <section class="panel">
        {props.entries.length ? null : <p class="muted">No entries match.</p>}
        <ScrollRegion label="Audit log table">
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
                  <td data-testid="audit-actor">
                    <NameLink named={e.actorName} raw={e.actor} />
                    {e.address ? <div class="muted">{e.address}</div> : null}
                  </td>
                  <td>{e.action}</td>
                  <td data-testid="audit-target">
                    {e.targetName && e.target ? <NameLink named={e.targetName} raw={e.target} /> : "–"}
                  </td>
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
        </ScrollRegion>
        <nav class="pager" aria-label="Pages">
          <a href={`/settings/audit?${filterQuery(props.filter, zone)}`}>Newest</a>
          {props.next ? (
            <a href={`/settings/audit?${filterQuery(props.filter, zone, { before: String(props.next) })}`}>
              Older →
            </a>
          ) : (
            <span class="muted">No older entries</span>
          )}
        </nav>
      </section>
    </>
  );
}
