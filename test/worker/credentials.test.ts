// Credentials that really end, counters that really count, ids and buckets a client cannot forge.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { app } from "../../worker/app";
import { apiTokens, sessions } from "../../worker/db/schema";
import { LOCKOUT_THRESHOLD } from "../../worker/services/users";
import { db, page, sessionFrom, signedIn } from "./dashboard-helpers";
import { BASE, call, expectError, json } from "./helpers/api";

const sessionCall = (
  path: string,
  s: { cookie: string; csrf: string },
  init: { method?: string; body?: unknown } = {},
) =>
  exports.default.fetch(
    new Request(`${BASE}${path}`, {
      method: init.method ?? (init.body ? "POST" : "GET"),
      headers: {
        Cookie: `__Host-fg_session=${s.cookie}`,
        "X-CSRF-Token": s.csrf,
        "CF-Connecting-IP": "198.51.100.9",
        ...(init.body ? { "Content-Type": "application/json" } : {}),
      },
      body: init.body ? JSON.stringify(init.body) : undefined,
    }),
  );

async function userToken(s: { cookie: string; csrf: string }) {
  return json<{ id: string; token: string; createdBy: string; ownerUserId: string }>(
    await sessionCall("/api/v1/tokens", s, { body: { name: "script", role: "admin" } }),
    201,
  );
}

describe("atomic counters", () => {
  it("20 wrong passwords in parallel lock the account", async () => {
    const s = await signedIn();
    const address = "192.0.2.77";
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        page("/login", { form: { name: s.name, password: "wrong password!" }, address }),
      ),
    );
    for (const r of answers) await r.text();
    const right = await page("/login", {
      form: { name: s.name, password: s.password },
      address: "192.0.2.78",
    });
    expect(sessionFrom(right)).toBeNull();
    expect(await right.text()).toContain("locked");
    expect(LOCKOUT_THRESHOLD).toBeLessThan(20);
  });

  it("parallel attempts from one address never pass the rate limit more than its count", async () => {
    const attempt = () =>
      call("/api/agent/v1/enroll", {
        token: null,
        address: "192.0.2.99",
        body: {
          enrollmentKey: "fge_guess",
          instanceId: "instance-par-1",
          hostname: "h",
          agentVersion: "1",
          proxyKind: "builtin",
        },
      });
    const statuses = (await Promise.all(Array.from({ length: 30 }, attempt))).map((r) => r.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(20);
    expect(statuses.filter((s) => s === 429)).toHaveLength(10);
  });
});

describe("rate-limit buckets", () => {
  const enrollFrom = (headers: Record<string, string>) =>
    exports.default.fetch(
      new Request(`${BASE}/api/agent/v1/enroll`, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...headers },
        body: JSON.stringify({
          enrollmentKey: "fge_guess",
          instanceId: "instance-bucket-1",
          hostname: "h",
          agentVersion: "1",
          proxyKind: "builtin",
        }),
      }),
    );

  it("one IPv6 /64 is one bucket", async () => {
    const statuses: number[] = [];
    for (let i = 1; i <= 21; i++) {
      statuses.push((await enrollFrom({ "CF-Connecting-IP": `2001:db8:aa:bb:${i.toString(16)}::1` })).status);
    }
    expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
    expect(statuses[20]).toBe(429);
    // The expanded spelling of the same /64 counts too; another /64 does not.
    expect((await enrollFrom({ "CF-Connecting-IP": "2001:0db8:00aa:00bb:0000:0000:0000:0009" })).status).toBe(
      429,
    );
    expect((await enrollFrom({ "CF-Connecting-IP": "2001:db8:aa:bc::1" })).status).toBe(401);
  });

  it("callers without CF-Connecting-IP do not share one bucket", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 22; i++) statuses.push((await enrollFrom({})).status);
    expect(statuses.every((s) => s === 401)).toBe(true);
  });
});

describe("credentials that end", () => {
  it("tokens record their creator and owner", async () => {
    const s = await signedIn();
    const token = await userToken(s);
    expect(token.createdBy).toBe(`user:${s.user.id}`);
    expect(token.ownerUserId).toBe(s.user.id);
    // A token made with that token acts for the same user.
    const child = await json<{ ownerUserId: string }>(
      await call("/api/v1/tokens", { token: token.token, body: { name: "child", role: "viewer" } }),
      201,
    );
    expect(child.ownerUserId).toBe(s.user.id);
  });

  it("a password change through the API ends the user's sessions and tokens", async () => {
    const s = await signedIn();
    const token = await userToken(s);
    expect((await call("/api/v1/nodes", { token: token.token })).status).toBe(200);
    await json(
      await call(`/api/v1/users/${s.user.id}`, {
        method: "PATCH",
        body: { password: "a brand new password" },
      }),
      200,
    );
    await expectError(await sessionCall("/api/v1/nodes", s), 401, "UNAUTHORIZED");
    await expectError(await call("/api/v1/nodes", { token: token.token }), 401, "UNAUTHORIZED");
    expect(await db().select().from(sessions).where(eq(sessions.userId, s.user.id))).toHaveLength(0);
  });

  it("disabling a user ends their sessions and tokens, also a token's child token", async () => {
    const s = await signedIn();
    const token = await userToken(s);
    const child = await json<{ token: string }>(
      await call("/api/v1/tokens", { token: token.token, body: { name: "child", role: "viewer" } }),
      201,
    );
    await json(await call(`/api/v1/users/${s.user.id}`, { method: "PATCH", body: { disabled: true } }), 200);
    await expectError(await call("/api/v1/nodes", { token: token.token }), 401, "UNAUTHORIZED");
    await expectError(await call("/api/v1/nodes", { token: child.token }), 401, "UNAUTHORIZED");
    await expectError(await sessionCall("/api/v1/nodes", s), 401, "UNAUTHORIZED");
    const [row] = await db().select().from(apiTokens).where(eq(apiTokens.id, token.id));
    expect(row?.revokedAt).not.toBeNull();
  });

  it("SESSION_MAX_HOURS sets the session's lifetime", async () => {
    const s = await signedIn();
    const ctx = createExecutionContext();
    const response = await app.fetch(
      new Request(`${BASE}/login`, {
        method: "POST",
        headers: {
          "Content-Type": "application/x-www-form-urlencoded",
          Origin: BASE,
          "CF-Connecting-IP": "192.0.2.5",
        },
        body: new URLSearchParams({ name: s.name, password: s.password }),
        redirect: "manual",
      }),
      { ...env, SESSION_MAX_HOURS: "2" },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(response.status).toBe(303);
    const rows = await db().select().from(sessions).where(eq(sessions.userId, s.user.id));
    const newest = rows.sort((a, b) => b.createdAt - a.createdAt)[0]!;
    expect(newest.expiresAt - newest.createdAt).toBe(2 * 3600_000);
  });
});

describe("request ids", () => {
  it("a client's X-Request-Id is not trusted into the audit log or the error body", async () => {
    const forged = "forged-request-id-0001";
    const created = await call("/api/v1/enrollment-keys", {
      body: { name: "rid" },
      headers: { "X-Request-Id": forged },
    });
    const { id } = await json<{ id: string }>(created, 201);
    expect(created.headers.get("X-Request-Id")).not.toBe(forged);
    const audit = await json<{ entries: { target: string; requestId: string }[] }>(
      await call("/api/v1/audit"),
      200,
    );
    const entry = audit.entries.find((e) => e.target === id)!;
    expect(entry.requestId).not.toBe(forged);
    expect(entry.requestId).toMatch(/^[0-9a-f-]{36}$/);
    const refused = await expectError(
      await call("/api/v1/nodes", { token: "nope", headers: { "X-Request-Id": forged } }),
      401,
      "UNAUTHORIZED",
    );
    expect(refused.error.requestId).not.toBe(forged);
  });
});
