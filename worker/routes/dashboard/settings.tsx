import { getDb } from "../../db/client";
import type { Role } from "../../env";
import { AppError } from "../../errors";
import { auditOf, type DashContext } from "../../middleware/session";
import { getAgentAllowlist, setAgentAllowlist } from "../../services/agent-allowlist";
import {
  alertConfigView,
  CONDITION_KINDS,
  listAlerts,
  resolveAlerts,
  saveAlertConfig,
  sendTestAlert,
} from "../../services/alerts";
import { createApiToken, listApiTokens, revokeApiToken } from "../../services/api-tokens";
import { searchAudit } from "../../services/audit-search";
import { createEnrollmentKey, listEnrollmentKeys, revokeEnrollmentKey } from "../../services/enrollment";
import { endUserSessions } from "../../services/sessions";
import { createUser, listUsers, updateUser } from "../../services/users";
import { paginate } from "../../views/components";
import {
  AlertsPage,
  AllowlistPage,
  type AuditFilterView,
  AuditPage,
  KeysPage,
  TokensPage,
  UsersPage,
} from "../../views/settings";
import { fromLocalInput } from "../../views/time";
import { dashboardSection, FORM_STATUS, formFields, pageContext } from "./app";
import { confirmFirst } from "./confirm";

export const settingsPages = dashboardSection();

const DAY = 24 * 3600_000;
const page = (c: DashContext) => Number(c.req.query("page") ?? 1);
const optionalInt = (v: string | undefined) => (v && v.trim() !== "" ? Number.parseInt(v, 10) : null);
const role = (v: string | undefined): Role => (v === "admin" ? "admin" : "viewer");

/** Service errors a person can fix become a notice on the same page; anything else is an error page. */
function userError(error: unknown): string {
  if (error instanceof AppError && error.status < 500 && error.status !== 403) return error.message;
  throw error;
}

settingsPages.get("/", (c) => c.redirect("/settings/keys", 303));

async function renderKeys(
  c: DashContext,
  extra: { created?: { key: string; name: string }; error?: string } = {},
) {
  const { rows, info } = paginate(await listEnrollmentKeys(getDb(c.env.DB)), page(c));
  const created = extra.created ? { ...extra.created, origin: new URL(c.req.url).origin } : undefined;
  return c.html(
    <KeysPage page={pageContext(c)} keys={rows} info={info} created={created} error={extra.error} />,
    FORM_STATUS,
  );
}

settingsPages.get("/keys", (c) => renderKeys(c));

settingsPages.post("/keys", async (c) => {
  const form = await formFields(c);
  try {
    const days = optionalInt(form.days);
    const key = await createEnrollmentKey({
      db: getDb(c.env.DB),
      actor: auditOf(c),
      input: {
        name: (form.name ?? "").trim().slice(0, 100) || "unnamed",
        maxUses: optionalInt(form.maxUses),
        expiresAt: days ? Date.now() + days * DAY : null,
      },
    });
    return renderKeys(c, { created: { key: key.key, name: key.name } });
  } catch (error) {
    return renderKeys(c, { error: userError(error) });
  }
});

settingsPages.post(
  "/keys/:id/revoke",
  confirmFirst({
    back: "/settings/keys",
    message: () =>
      "Revoke this enrollment key? Nodes can no longer enroll with it; enrolled nodes keep working.",
  }),
  async (c) => {
    await revokeEnrollmentKey({ db: getDb(c.env.DB), actor: auditOf(c), input: { id: c.req.param("id") } });
    return c.redirect("/settings/keys", 303);
  },
);

async function renderAllowlist(
  c: DashContext,
  extra: {
    notice?: string;
    error?: string;
    errors?: string[];
    draft?: { enabled: boolean; cidrs: string[] };
  } = {},
) {
  const list = extra.draft ?? (await getAgentAllowlist(getDb(c.env.DB)));
  return c.html(
    <AllowlistPage page={pageContext(c)} enabled={list.enabled} cidrs={list.cidrs} {...extra} />,
    FORM_STATUS,
  );
}

settingsPages.get("/allowlist", (c) => renderAllowlist(c));

settingsPages.post("/allowlist", async (c) => {
  const form = await formFields(c);
  const next = {
    enabled: form.enabled === "1",
    cidrs: (form.cidrs ?? "")
      .split(/[\s,]+/)
      .map((s) => s.trim())
      .filter(Boolean),
  };
  try {
    await setAgentAllowlist(getDb(c.env.DB), next, auditOf(c));
    return renderAllowlist(c, { notice: "Allow list saved." });
  } catch (error) {
    const message = userError(error);
    const details =
      error instanceof AppError ? (error.details ?? []).map((d) => `${d.path}: ${d.message}`) : [];
    return renderAllowlist(c, { error: message, errors: details, draft: next });
  }
});

async function renderUsers(c: DashContext, extra: { notice?: string; error?: string } = {}) {
  const { rows, info } = paginate(await listUsers(getDb(c.env.DB)), page(c));
  return c.html(
    <UsersPage page={pageContext(c)} users={rows} info={info} now={Date.now()} {...extra} />,
    FORM_STATUS,
  );
}

settingsPages.get("/users", (c) => renderUsers(c));

settingsPages.post("/users", async (c) => {
  const form = await formFields(c);
  try {
    const user = await createUser({
      db: getDb(c.env.DB),
      actor: auditOf(c),
      input: { name: (form.name ?? "").trim(), role: role(form.role), password: form.password ?? "" },
    });
    return renderUsers(c, { notice: `User ${user.name} added as ${user.role}.` });
  } catch (error) {
    return renderUsers(c, { error: userError(error) });
  }
});

settingsPages.post(
  "/users/:id",
  confirmFirst({
    back: "/settings/users",
    when: async (f, c) =>
      f.disabled === "1" &&
      (await listUsers(getDb(c.env.DB))).some((u) => u.id === c.req.param("id") && u.disabledAt === null),
    message: () => "Disable this dashboard user? Their sessions end at once and they cannot sign in.",
  }),
  async (c) => {
    const form = await formFields(c);
    const db = getDb(c.env.DB);
    const id = c.req.param("id");
    try {
      const password = form.password?.length ? form.password : undefined;
      const disabled = form.disabled === "1";
      const user = await updateUser({
        db,
        actor: auditOf(c),
        input: { id, role: role(form.role), disabled, ...(password ? { password } : {}) },
      });
      // A new password or a disabled account ends the sessions that exist.
      if (password || disabled) await endUserSessions(db, id);
      if (id === c.get("user")?.id && (password || disabled)) return c.redirect("/login", 303);
      return renderUsers(c, { notice: `User ${user.name} saved.` });
    } catch (error) {
      return renderUsers(c, { error: userError(error) });
    }
  },
);

async function renderTokens(
  c: DashContext,
  extra: { created?: { token: string; name: string }; error?: string } = {},
) {
  const { rows, info } = paginate(await listApiTokens(getDb(c.env.DB)), page(c));
  return c.html(<TokensPage page={pageContext(c)} tokens={rows} info={info} {...extra} />, FORM_STATUS);
}

settingsPages.get("/tokens", (c) => renderTokens(c));

settingsPages.post("/tokens", async (c) => {
  const form = await formFields(c);
  try {
    const days = optionalInt(form.days);
    const token = await createApiToken({
      db: getDb(c.env.DB),
      actor: auditOf(c),
      input: {
        name: (form.name ?? "").trim().slice(0, 100) || "unnamed",
        role: role(form.role),
        expiresAt: days ? Date.now() + days * DAY : null,
      },
    });
    return renderTokens(c, { created: { token: token.token, name: token.name } });
  } catch (error) {
    return renderTokens(c, { error: userError(error) });
  }
});

settingsPages.post(
  "/tokens/:id/revoke",
  confirmFirst({
    back: "/settings/tokens",
    message: () => "Revoke this API token? Scripts using it are refused at once.",
  }),
  async (c) => {
    await revokeApiToken({ db: getDb(c.env.DB), actor: auditOf(c), input: { id: c.req.param("id") } });
    return c.redirect("/settings/tokens", 303);
  },
);

const AUDIT_PAGE = 50;

const AUDIT_ACTOR = /^[a-z]+(:[a-z0-9_-]{1,64})?$/;
const AUDIT_ACTION = /^[a-z-]{1,40}(\.[a-z-]{0,40})?$/;

settingsPages.get("/audit", async (c) => {
  const db = getDb(c.env.DB);
  const q = c.req.query();
  const zone = pageContext(c).tz?.zone ?? "UTC";
  const time = (v: string | undefined) => {
    const ms = v?.trim() ? fromLocalInput(v, zone) : Number.NaN;
    return Number.isFinite(ms) ? ms : undefined;
  };
  const text = (v: string | undefined, pattern?: RegExp) => {
    const t = v?.trim().slice(0, 200);
    return t && (!pattern || pattern.test(t)) ? t : undefined;
  };
  const filter: AuditFilterView = {
    actor: text(q.actor, AUDIT_ACTOR),
    action: text(q.action, AUDIT_ACTION),
    target: text(q.target),
    from: time(q.from),
    to: time(q.to),
  };
  const ignored = (["actor", "action"] as const).filter((k) => q[k]?.trim() && !filter[k]);
  let error = ignored.length ? `ignored: not a valid ${ignored.join(" or ")}` : undefined;
  let result: Awaited<ReturnType<typeof searchAudit>> = { entries: [], next: null };
  try {
    result = await searchAudit({
      db,
      input: { limit: AUDIT_PAGE, before: optionalInt(q.before) ?? undefined, ...filter },
    });
  } catch (e) {
    error = userError(e);
  }
  const [people, tokens] = await Promise.all([listUsers(db), listApiTokens(db)]);
  const actors = [
    ...people.map((u) => ({ id: `user:${u.id}`, name: `${u.name} (user)` })),
    ...tokens.map((t) => ({ id: `token:${t.id}`, name: `${t.name} (API token)` })),
    { id: "bootstrap", name: "bootstrap token" },
    { id: "system:rollout", name: "rollout gates (system)" },
    { id: "anonymous", name: "anonymous (failed sign-in)" },
  ];
  return c.html(
    <AuditPage
      page={pageContext(c)}
      entries={result.entries}
      next={result.next}
      filter={filter}
      actors={actors}
      error={error}
    />,
  );
});

async function renderAlerts(c: DashContext, extra: { notice?: string; error?: string } = {}) {
  const db = getDb(c.env.DB);
  return c.html(
    <AlertsPage
      page={pageContext(c)}
      config={await alertConfigView({ db })}
      kinds={CONDITION_KINDS}
      alerts={await listAlerts({ db, limit: 50 })}
      {...extra}
    />,
    FORM_STATUS,
  );
}

settingsPages.get("/alerts", (c) => renderAlerts(c));

settingsPages.post("/alerts", async (c) => {
  const body = await c.req.parseBody({ all: true });
  const form = await formFields(c);
  const kinds = ([] as unknown[]).concat(body.kinds ?? []).filter((k): k is string => typeof k === "string");
  try {
    await saveAlertConfig({
      db: getDb(c.env.DB),
      audit: auditOf(c),
      input: {
        url: form.url ?? "",
        secret: form.secret,
        clearSecret: form.clearSecret === "1",
        kinds,
        backlogMinutes: Number(form.backlogMinutes ?? 30),
      },
    });
    return renderAlerts(c, { notice: "Alerts saved." });
  } catch (error) {
    return renderAlerts(c, { error: userError(error) });
  }
});

settingsPages.post("/alerts/:id/resolve", async (c) => {
  const resolved = await resolveAlerts({ db: getDb(c.env.DB), audit: auditOf(c), ids: [c.req.param("id")] });
  return resolved
    ? renderAlerts(c, { notice: "Alert resolved: its next occurrence alerts again." })
    : renderAlerts(c, { error: "That alert is not open (resolved already, or no such alert)." });
});

settingsPages.post("/alerts/test", async (c) => {
  const result = await sendTestAlert({
    db: getDb(c.env.DB),
    env: c.env,
    by: auditOf(c).actor.name,
    via: "the dashboard",
  });
  if (result.delivery === "sent")
    return renderAlerts(c, { notice: "Test alert delivered (the webhook answered 2xx)." });
  if (result.delivery === "off")
    return renderAlerts(c, { error: "No webhook is configured: save a URL and secret first." });
  return renderAlerts(c, { error: `Test alert not delivered: ${result.error ?? "unknown error"}` });
});
