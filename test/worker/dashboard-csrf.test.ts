import { describe, expect, it } from "vitest";
import { listEnrollmentKeys } from "../../worker/services/enrollment";
import { db, page, signedIn } from "./dashboard-helpers";
import { call } from "./helpers/api";

describe("CSRF protection", () => {
  it("refuses a form posted from another origin, even with a valid token", async () => {
    const s = await signedIn();
    const r = await page("/settings/keys", {
      cookie: s.cookie,
      form: { _csrf: s.csrf, name: "evil" },
      origin: "https://evil.example",
    });
    expect(r.status).toBe(403);
    expect((await listEnrollmentKeys(db())).some((k) => k.name === "evil")).toBe(false);
  });

  it("refuses a same-origin form without the session's token or with another session's token", async () => {
    const s = await signedIn();
    const other = await signedIn();
    const forms: Record<string, string>[] = [
      { name: "no-token" },
      { name: "wrong-token", _csrf: other.csrf },
      { name: "junk", _csrf: "x".repeat(43) },
    ];
    for (const form of forms) {
      const r = await page("/settings/keys", { cookie: s.cookie, form });
      expect(r.status, form.name).toBe(403);
      expect(await r.text()).toContain("CSRF");
    }
    expect((await listEnrollmentKeys(db())).map((k) => k.name)).not.toContain("no-token");
  });

  it("accepts the same form with the token, and the login form only from this origin", async () => {
    const s = await signedIn();
    const ok = await page("/settings/keys", { cookie: s.cookie, form: { _csrf: s.csrf, name: "good key" } });
    expect(ok.status).toBe(200);
    const html = await ok.text();
    expect(html).toMatch(
      /fleetgate-agent enroll --master https:\/\/master\.test --key fge_[A-Za-z0-9_-]{43}/,
    );
    const crossLogin = await page("/login", {
      form: { name: s.name, password: s.password },
      origin: "https://evil.example",
    });
    expect(crossLogin.status).toBe(403);
  });

  it("lets the browser call /api/v1 with the session cookie: reads freely, writes only with X-CSRF-Token", async () => {
    const s = await signedIn();
    const cookie = `__Host-fg_session=${s.cookie}`;
    const read = await call("/api/v1/nodes", { token: null, headers: { Cookie: cookie } });
    expect(read.status).toBe(200);
    const noHeader = await call("/api/v1/enrollment-keys", {
      token: null,
      headers: { Cookie: cookie },
      body: { name: "api" },
    });
    expect(noHeader.status).toBe(403);
    const withHeader = await call("/api/v1/enrollment-keys", {
      token: null,
      headers: { Cookie: cookie, "X-CSRF-Token": s.csrf },
      body: { name: "api" },
    });
    expect(withHeader.status).toBe(201);
    expect(
      (await call("/api/v1/nodes", { token: null, headers: { Cookie: "__Host-fg_session=bogus" } })).status,
    ).toBe(401);
    // The bearer path is unchanged.
    expect((await call("/api/v1/nodes")).status).toBe(200);
  });
});
