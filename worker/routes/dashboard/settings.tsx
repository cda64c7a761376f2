import { getDb } from "../../db/client";
import type { Role } from "../../env";
import { AppError } from "../../errors";
import { auditOf, type DashContext } from "../../middleware/session";
import { getAgentAllowlist, setAgentAllowlist } from "../../services/agent-allowlist";
import { createApiToken, listApiTokens, revokeApiToken } from "../../services/api-tokens";
import { listAudit } from "../../services/audit";
import { createEnrollmentKey, listEnrollmentKeys, revokeEnrollmentKey } from "../../services/enrollment";
import { endUserSessions } from "../../services/sessions";
import { createUser, listUsers, updateUser } from "../../services/users";
import { paginate } from "../../views/components";
import { AllowlistPage, AuditPage, KeysPage, TokensPage, UsersPage } from "../../views/settings";
import { dashboardSection, FORM_STATUS, formFields, pageContext } from "./app";

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

settingsPages.post("/keys/:id/revoke", async (c) => {
  await revokeEnrollmentKey({ db: getDb(c.env.DB), actor: auditOf(c), input: { id: c.req.param("id") } });
  return c.redirect("/settings/keys", 303);
});

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

settingsPages.post("/users/:id", async (c) => {
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
});

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

settingsPages.post("/tokens/:id/revoke", async (c) => {
  await revokeApiToken({ db: getDb(c.env.DB), actor: auditOf(c), input: { id: c.req.param("id") } });
  return c.redirect("/settings/tokens", 303);
});

const AUDIT_PAGE = 50;

settingsPages.get("/audit", async (c) => {
  const db = getDb(c.env.DB);
  const before = optionalInt(c.req.query("before")) ?? undefined;
  const entries = await listAudit(db, { limit: AUDIT_PAGE, ...(before ? { before } : {}) });
  const actors: Record<string, string> = {};
  for (const u of await listUsers(db)) actors[`user:${u.id}`] = u.name;
  const next = entries.length === AUDIT_PAGE ? entries[entries.length - 1]?.id : undefined;
  return c.html(<AuditPage page={pageContext(c)} entries={entries} next={next} actors={actors} />);
});
