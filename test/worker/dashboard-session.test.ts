import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { sessions, users } from "../../worker/db/schema";
import { listAudit } from "../../worker/services/audit";
import { hashSecret } from "../../worker/services/secrets";
import { db, page, sessionFrom, signedIn, submit } from "./dashboard-helpers";

const aged = async (cookie: string, fields: Partial<typeof sessions.$inferInsert>) =>
  db()
    .update(sessions)
    .set(fields)
    .where(eq(sessions.idHash, await hashSecret(cookie)));

describe("dashboard sessions", () => {
  it("stores only the hash of the session id, with expiry", async () => {
    const s = await signedIn();
    const rows = await db().select().from(sessions).where(eq(sessions.userId, s.user.id));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.idHash).toBe(await hashSecret(s.cookie));
    expect(rows[0]!.idHash).not.toContain(s.cookie);
    expect(rows[0]!.expiresAt - rows[0]!.createdAt).toBe(12 * 3600_000);
  });

  it("ends a session past its absolute expiry", async () => {
    const s = await signedIn();
    expect((await page("/overview", { cookie: s.cookie })).status).toBe(200);
    await aged(s.cookie, { expiresAt: Date.now() - 1 });
    const r = await page("/overview", { cookie: s.cookie });
    expect(r.status).toBe(303);
    expect(r.headers.get("Location")).toMatch(/^\/login/);
    expect(await db().select().from(sessions).where(eq(sessions.userId, s.user.id))).toHaveLength(0);
  });

  it("ends a session left idle longer than the idle timeout, and slides it while used", async () => {
    const s = await signedIn();
    await aged(s.cookie, { lastSeenAt: Date.now() - 29 * 60_000 });
    expect((await page("/overview", { cookie: s.cookie })).status).toBe(200);
    const [row] = await db().select().from(sessions).where(eq(sessions.userId, s.user.id));
    expect(Date.now() - row!.lastSeenAt).toBeLessThan(60_000);
    await aged(s.cookie, { lastSeenAt: Date.now() - 31 * 60_000 });
    expect((await page("/overview", { cookie: s.cookie })).status).toBe(303);
  });

  it("refuses a wrong password without a cookie and audits it", async () => {
    const s = await signedIn();
    const r = await page("/login", {
      form: { name: s.name, password: "not the password" },
      address: "198.51.100.250",
    });
    // The form comes back with the message (200: Chromium logs any 4xx document as a console error).
    expect(r.status).toBe(200);
    expect(sessionFrom(r)).toBeNull();
    expect(await r.text()).toContain("wrong user name or password");
    const audit = await listAudit(db(), { limit: 20 });
    expect(audit.some((e) => e.action === "user.login-failed" && e.target === s.user.id)).toBe(true);
  });

  it("locks an account after 5 wrong passwords, even for the right one, and audits the lockout", async () => {
    const s = await signedIn();
    for (let i = 0; i < 5; i++) {
      const r = await page("/login", {
        form: { name: s.name, password: `wrong ${i}` },
        address: `192.0.2.${i + 1}`,
      });
      expect(sessionFrom(r)).toBeNull();
      expect(await r.text()).toContain("wrong user name or password");
    }
    const locked = await page("/login", {
      form: { name: s.name, password: s.password },
      address: "192.0.2.99",
    });
    expect(sessionFrom(locked)).toBeNull();
    expect(Number(locked.headers.get("Retry-After"))).toBeGreaterThan(800);
    expect(await locked.text()).toContain("locked");
    const [row] = await db().select().from(users).where(eq(users.id, s.user.id));
    expect(row!.lockedUntil).toBeGreaterThan(Date.now() + 14 * 60_000);
    const audit = await listAudit(db(), { limit: 50 });
    expect(audit.some((e) => e.action === "user.locked" && e.target === s.user.id)).toBe(true);
    // The lock ends: the right password works again.
    await db()
      .update(users)
      .set({ lockedUntil: Date.now() - 1 })
      .where(eq(users.id, s.user.id));
    expect(
      (await page("/login", { form: { name: s.name, password: s.password }, address: "192.0.2.98" })).status,
    ).toBe(303);
  });

  it("rate-limits login attempts per address", async () => {
    const address = "203.0.113.77";
    let last = "";
    for (let i = 0; i < 21; i++) {
      last = await (await page("/login", { form: { name: `nobody-${i}`, password: "x" }, address })).text();
    }
    expect(last).toContain("too many attempts");
  });

  it("logs out: the session row is gone and the cookie no longer works", async () => {
    const s = await signedIn();
    const r = await submit("/logout", s);
    expect(r.status).toBe(303);
    expect(r.headers.get("Set-Cookie")).toMatch(/Max-Age=0/i);
    expect((await page("/overview", { cookie: s.cookie })).status).toBe(303);
    expect(await db().select().from(sessions).where(eq(sessions.userId, s.user.id))).toHaveLength(0);
  });

  it("sets a nonce CSP on every page, and every script carries the nonce", async () => {
    const s = await signedIn();
    for (const path of [
      "/login",
      "/overview",
      "/nodes",
      "/policy",
      "/policy/history",
      "/policy/test",
      "/reports",
      "/settings/keys",
    ]) {
      const r = await page(path, { cookie: path === "/login" ? null : s.cookie });
      const csp = r.headers.get("Content-Security-Policy") ?? "";
      const nonce = /script-src 'nonce-([A-Za-z0-9+/=_-]+)'/.exec(csp)?.[1];
      expect(nonce, `${path}: ${csp}`).toBeTruthy();
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toMatch(/unsafe-inline|https?:\/\//);
      const html = await r.text();
      const scripts = html.match(/<script[^>]*>/g) ?? [];
      expect(scripts.length, path).toBeGreaterThan(0);
      for (const tag of scripts) {
        expect(tag).toContain(`nonce="${nonce}"`);
        expect(tag).not.toMatch(/src="https?:/);
      }
      expect(r.headers.get("X-Frame-Options")).toBe("SAMEORIGIN");
    }
    // The nonce changes per response.
    const a = (await page("/login")).headers.get("Content-Security-Policy");
    const b = (await page("/login")).headers.get("Content-Security-Policy");
    expect(a).not.toBe(b);
  });

  it("serves the dashboard's script, styles and uPlot itself", async () => {
    for (const [file, type] of [
      ["dashboard.js", "javascript"],
      ["uplot.js", "javascript"],
      ["uplot.css", "css"],
      ["dashboard.css", "css"],
    ]) {
      const r = await page(`/assets/${file}`);
      expect(r.status, file).toBe(200);
      expect(r.headers.get("Content-Type")).toContain(type);
      expect((await r.text()).length).toBeGreaterThan(500);
    }
    expect(env.DB).toBeDefined();
  });
});
