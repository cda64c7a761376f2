import { describe, expect, it } from "vitest";
import { listAudit } from "../../worker/services/audit";
import { countUsers } from "../../worker/services/users";
import { db, page, sessionFrom } from "./dashboard-helpers";
import { BOOTSTRAP } from "./helpers/api";

// One file = one fresh database, so this file sees a master that has never been set up.
describe("first-run setup", () => {
  it("sends a fresh master to setup, refuses a wrong token, creates the admin, then closes", async () => {
    const home = await page("/overview");
    expect(home.status).toBe(303);
    expect(home.headers.get("Location")).toMatch(/^\/login/);
    const login = await page("/login");
    expect(login.headers.get("Location")).toBe("/setup");

    const form = await page("/setup");
    expect(form.status).toBe(200);
    expect(await form.text()).toContain("bootstrap token");

    const wrong = await page("/setup", {
      form: {
        token: "fgb_wrong-token-123456789",
        name: "alice",
        password: "long enough password",
        password2: "long enough password",
      },
    });
    expect(wrong.status).toBe(200);
    expect(await wrong.text()).toContain("not the bootstrap token");
    expect(sessionFrom(wrong)).toBeNull();
    expect(await countUsers(db())).toBe(0);

    const mismatch = await page("/setup", {
      form: {
        token: BOOTSTRAP,
        name: "alice",
        password: "long enough password",
        password2: "different password!",
      },
    });
    expect(await mismatch.text()).toContain("the two passwords differ");

    const ok = await page("/setup", {
      form: {
        token: BOOTSTRAP,
        name: "alice",
        password: "long enough password",
        password2: "long enough password",
      },
    });
    expect(ok.status).toBe(303);
    expect(ok.headers.get("Location")).toBe("/overview");
    const cookie = ok.headers.get("Set-Cookie") ?? "";
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/Secure/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    const overview = await page("/overview", { cookie: sessionFrom(ok) });
    expect(overview.status).toBe(200);
    expect(await overview.text()).toContain("alice");

    expect((await page("/setup")).headers.get("Location")).toBe("/login");
    const again = await page("/setup", {
      form: {
        token: BOOTSTRAP,
        name: "mallory",
        password: "long enough password",
        password2: "long enough password",
      },
    });
    expect(again.status).toBe(403);
    expect(await countUsers(db())).toBe(1);
    const audit = await listAudit(db(), { limit: 10 });
    expect(audit.map((e) => e.action)).toContain("user.setup");
  });
});
