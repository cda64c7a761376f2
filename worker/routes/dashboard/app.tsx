import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { csrf } from "hono/csrf";
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import { NONCE, secureHeaders } from "hono/secure-headers";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { AppError } from "../../errors";
import { type DashContext, type DashEnv, loadViewer, requireUser } from "../../middleware/session";
import { guardWrites } from "../../middleware/write-guard";
import type { PageContext } from "../../views/layout";
import { ErrorPage } from "../../views/sign-in";

// Every dashboard page: a nonce CSP with nothing from another origin (assets come from /assets).
export const dashboardHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'self'"],
    scriptSrc: [NONCE],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", "data:"],
    connectSrc: ["'self'"],
    fontSrc: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
    objectSrc: ["'none'"],
  },
  referrerPolicy: "same-origin",
});

const MiB = 1024 * 1024;

export function renderError(c: DashContext, error: unknown) {
  const requestId = c.get("requestId") ?? "unknown";
  let status = 500;
  let message = "internal error; quote the request id when reporting it";
  let headers: Record<string, string> | undefined;
  if (error instanceof AppError) {
    status = error.status;
    message = error.message;
    headers = error.headers;
  } else if (error instanceof HTTPException && error.status < 500) {
    status = error.status;
    message = error.status === 403 ? "cross-site form submission refused" : error.message || "bad request";
  } else {
    console.error(
      JSON.stringify({ requestId, path: c.req.path, error: String(error), stack: (error as Error).stack }),
    );
  }
  const nonce = c.get("secureHeadersNonce") ?? "";
  return c.html(
    <ErrorPage nonce={nonce} status={status} message={message} requestId={requestId} />,
    status as ContentfulStatusCode,
    headers,
  );
}

/**
 * A dashboard section: CSP, body limit, viewer resolution, CSRF and role guard on writes, an
 * HTML error page. `open` sections (setup, login) do not require a signed-in user.
 */
const FORM_LIMIT = 256 * 1024;

const formLimit = (maxSize: number) =>
  bodyLimit({
    maxSize,
    onError: () => {
      throw new AppError("PAYLOAD_TOO_LARGE", `forms here are limited to ${maxSize / 1024} KiB`);
    },
  });

/**
 * Parses a form body once, before any handler: a malformed multipart body (no boundary, cut
 * short) is a 400 here instead of a TypeError in whichever handler reads it first. Hono caches
 * the result, so later parseBody calls get the same fields.
 */
const readFormOnce = createMiddleware<DashEnv>(async (c, next) => {
  const type = c.req.header("Content-Type") ?? "";
  if (c.req.method !== "GET" && /^(application\/x-www-form-urlencoded|multipart\/form-data)/i.test(type)) {
    try {
      await c.req.parseBody();
    } catch {
      throw new AppError("BAD_REQUEST", "the form body cannot be read (malformed multipart or encoding)");
    }
  }
  await next();
});

export function dashboardSection(options: { open?: boolean; maxBody?: number } = {}) {
  const section = new Hono<DashEnv>();
  const smallLimit = formLimit(FORM_LIMIT);
  const adminLimit = options.maxBody ? formLimit(options.maxBody) : smallLimit;
  section.use("*", dashboardHeaders);
  // Forms from another origin are refused before anything else (Origin / Sec-Fetch-Site check);
  // signed-in forms must also carry the session's CSRF token (guardWrites).
  section.use("*", csrf());
  section.use("*", loadViewer);
  if (!options.open) section.use("*", requireUser);
  // The body is read only once the caller is known: a section's large limit is for its admins.
  section.use("*", (c, next) =>
    (c.get("user")?.role === "admin" ? adminLimit : smallLimit)(c as never, next),
  );
  section.use("*", readFormOnce);
  if (!options.open) section.use("*", guardWrites);
  section.onError((error, c) => renderError(c, error));
  return section;
}

export const POLICY_FORM_LIMIT = 8 * MiB;

/**
 * A form shown again with a message for the person (wrong password, invalid entry) answers 200:
 * the page rendered fine, and Chromium logs every 4xx document as a console error. Refusals that
 * are not a normal flow (CSRF, a viewer's write, no session) keep their 401/403.
 */
export const FORM_STATUS = 200;

export function pageContext(c: DashContext): PageContext {
  const user = c.get("user")!;
  return { nonce: c.get("secureHeadersNonce") ?? "", csrf: c.get("session")?.csrf ?? "", user };
}

/** Form fields as strings (files and repeated fields handled by the caller). */
export async function formFields(c: DashContext): Promise<Record<string, string>> {
  const body = await c.req.parseBody();
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) if (typeof v === "string") out[k] = v;
  return out;
}
