import { ActionButton, Csrf, ScrollRegion } from "../components";
import type { PageContext } from "../layout";
import { arr, type EditorState, obj } from "./shared";

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
        <ScrollRegion label="Schedules table">
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
        </ScrollRegion>
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
