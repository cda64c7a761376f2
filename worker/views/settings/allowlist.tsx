import { Csrf } from "../components";
import type { PageContext } from "../layout";
import { SettingsLayout } from "./layout";

export function AllowlistPage(props: {
  page: PageContext;
  enabled: boolean;
  cidrs: string[];
  notice?: string;
  error?: string;
  errors?: string[];
}) {
  const admin = props.page.user.role === "admin";
  return (
    <SettingsLayout
      page={props.page}
      tab="/settings/allowlist"
      title="Agent allow list"
      notice={props.notice}
      error={props.error}
    >
      <section class="panel">
        <p class="muted">
          Only these source addresses may enroll, poll and upload logs (SafeSquid's "Access Restriction →
          Allow list").
        </p>
        <form method="post" action="/settings/allowlist" class="stack">
          <Csrf token={props.page.csrf} />
          <label class="check">
            <input type="checkbox" name="enabled" value="1" checked={props.enabled} disabled={!admin} />{" "}
            Enforce the allow list
          </label>
          <label>
            Addresses and CIDRs, one per line
            <textarea
              name="cidrs"
              rows={8}
              class="mono"
              disabled={!admin}
              aria-invalid={props.errors?.length ? "true" : undefined}
            >
              {props.cidrs.join("\n")}
            </textarea>
          </label>
          {props.errors?.map((e) => (
            <p class="field-error">{e}</p>
          ))}
          {admin ? (
            <button type="submit" class="primary">
              Save allow list
            </button>
          ) : null}
        </form>
      </section>
    </SettingsLayout>
  );
}
