import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { getDb } from "../../worker/db/client";
import type { Role } from "../../worker/env";
import { csrfTokenFor } from "../../worker/services/sessions";
import { createUser } from "../../worker/services/users";
import { BASE } from "./helpers/api";

export const db = () => getDb(env.DB);
export const COOKIE = "__Host-fg_session";

export interface PageOptions {
  method?: string;
  cookie?: string | null;
  form?: Record<string, string>;
  origin?: string | null;
  headers?: Record<string, string>;
  address?: string;
}

/** A browser-like request to the real Worker entry: same-origin `Origin`, form bodies, the session cookie. */
export async function page(path: string, options: PageOptions = {}): Promise<Response> {
  const headers = new Headers(options.headers);
  headers.set("CF-Connecting-IP", options.address ?? "198.51.100.7");
  if (options.cookie) headers.set("Cookie", `${COOKIE}=${options.cookie}`);
  let body: BodyInit | undefined;
  if (options.form) {
    body = new URLSearchParams(options.form);
    headers.set("Content-Type", "application/x-www-form-urlencoded");
    if (options.origin !== null) headers.set("Origin", options.origin ?? BASE);
  }
  return exports.default.fetch(
    new Request(`${BASE}${path}`, {
      method: options.method ?? (body ? "POST" : "GET"),
      headers,
      body,
      redirect: "manual",
    }),
  );
}

export function sessionFrom(response: Response): string | null {
  const header = response.headers.get("Set-Cookie") ?? "";
  const match = new RegExp(`${COOKIE}=([^;]*)`).exec(header);
  return match?.[1] ? match[1] : null;
}

let counter = 0;

/** A user made through the service (no setup page), then signed in through the login form. */
export async function signedIn(role: Role = "admin", password = "correct horse battery") {
  const name = `${role}-${Date.now()}-${counter++}`;
  const actor = { id: "bootstrap", name: "bootstrap token", role: "admin" as const };
  const user = await createUser({
    db: db(),
    actor: { actor, requestId: "test" },
    input: { name, role, password },
  });
  const response = await page("/login", {
    form: { name, password },
    address: `198.51.100.${(counter % 200) + 20}`,
  });
  const cookie = sessionFrom(response);
  if (response.status !== 303 || !cookie)
    throw new Error(`login failed: ${response.status} ${await response.text()}`);
  return { user, name, password, cookie, csrf: await csrfTokenFor(cookie) };
}

/** Submits a dashboard form as the signed-in user would (with the session's CSRF token). */
export function submit(
  path: string,
  session: { cookie: string; csrf: string },
  form: Record<string, string> = {},
) {
  return page(path, { cookie: session.cookie, form: { _csrf: session.csrf, ...form } });
}
