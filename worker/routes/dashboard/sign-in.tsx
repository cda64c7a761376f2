import { config } from "../../config";
import { getDb } from "../../db/client";
import { AppError } from "../../errors";
import { clientAddress } from "../../middleware/context";
import { auditOf, clearSessionCookie, type DashContext, startSession } from "../../middleware/session";
import { endSession } from "../../services/sessions";
import { countUsers, loginWithPassword, setupFirstAdmin } from "../../services/users";
import { LoginPage, SetupPage } from "../../views/sign-in";
import { dashboardSection, FORM_STATUS, formFields } from "./app";

const ctx = (c: DashContext) => ({
  requestId: c.get("requestId"),
  address: clientAddress(c as never),
});

// Only same-site relative paths: never an open redirect.
const safeNext = (next: string | undefined) =>
  next && /^\/(?!\/)[\w\-/?=&.%]*$/.test(next) ? next : "/overview";

export const setupPages = dashboardSection({ open: true });

setupPages.get("/", async (c) => {
  if ((await countUsers(getDb(c.env.DB))) > 0) return c.redirect("/login", 303);
  return c.html(<SetupPage nonce={c.get("secureHeadersNonce") ?? ""} />);
});

setupPages.post("/", async (c) => {
  const db = getDb(c.env.DB);
  const form = await formFields(c);
  const nonce = c.get("secureHeadersNonce") ?? "";
  if ((form.password ?? "") !== (form.password2 ?? "")) {
    return c.html(
      <SetupPage nonce={nonce} name={form.name} errors={{ password2: ["the two passwords differ"] }} />,
      FORM_STATUS,
    );
  }
  try {
    const user = await setupFirstAdmin(
      db,
      config(c.env).bootstrapToken,
      { token: form.token ?? "", name: (form.name ?? "").trim(), password: form.password ?? "" },
      ctx(c),
    );
    await startSession(c, user);
    return c.redirect("/overview", 303);
  } catch (error) {
    if (!(error instanceof AppError) || error.code === "RATE_LIMITED" || error.code === "FORBIDDEN")
      throw error;
    const errors: Record<string, string[]> = {};
    for (const d of error.details ?? []) errors[d.path] = [...(errors[d.path] ?? []), d.message];
    return c.html(
      <SetupPage nonce={nonce} name={form.name} error={error.message} errors={errors} />,
      FORM_STATUS,
    );
  }
});

export const loginPages = dashboardSection({ open: true });

loginPages.get("/", async (c) => {
  if (c.get("user")) return c.redirect(safeNext(c.req.query("next")), 303);
  if ((await countUsers(getDb(c.env.DB))) === 0) return c.redirect("/setup", 303);
  return c.html(
    <LoginPage
      nonce={c.get("secureHeadersNonce") ?? ""}
      next={safeNext(c.req.query("next"))}
      notice={c.req.query("bye") !== undefined ? "You are signed out." : undefined}
      access={config(c.env).access !== null}
    />,
  );
});

loginPages.post("/", async (c) => {
  const form = await formFields(c);
  const name = (form.name ?? "").trim();
  try {
    const user = await loginWithPassword(getDb(c.env.DB), { name, password: form.password ?? "" }, ctx(c));
    await startSession(c, user);
    return c.redirect(safeNext(form.next), 303);
  } catch (error) {
    if (!(error instanceof AppError) || (error.code !== "UNAUTHORIZED" && error.code !== "RATE_LIMITED"))
      throw error;
    return c.html(
      <LoginPage
        nonce={c.get("secureHeadersNonce") ?? ""}
        name={name}
        next={safeNext(form.next)}
        error={error.message}
      />,
      FORM_STATUS,
      error.headers,
    );
  }
});

export const logoutPages = dashboardSection();

logoutPages.post("/", async (c) => {
  const session = c.get("session");
  if (session) await endSession(getDb(c.env.DB), session.id, auditOf(c));
  clearSessionCookie(c);
  return c.redirect("/login?bye", 303);
});
