import { describe, expect, it } from "vitest";
import { rulesOf } from "../../worker/routes/dashboard/policy-forms";
import { getDraft } from "../../worker/services/policy-draft";
import { DASHBOARD_PAGES } from "../helpers/dashboard-pages.mjs";
import { db, page, signedIn, submit } from "./dashboard-helpers";
import { call, json } from "./helpers/api";
import { enrollNode } from "./helpers/factories";

describe("dashboard policy flow (server side)", () => {
  it("every page answers 200 for an admin", async () => {
    const s = await signedIn("admin");
    for (const path of [...DASHBOARD_PAGES, "/reports?range=7d"]) {
      const r = await page(path, { cookie: s.cookie });
      expect(r.status, `${path}: ${(await r.text()).slice(0, 300)}`).toBe(200);
    }
  });

  it("builds a policy from forms, shows errors beside fields, publishes, diffs and rolls back", async () => {
    const s = await signedIn("admin");
    // A list pasted in hosts-file form, a schedule and a rule that uses both.
    expect(
      (
        await submit("/policy/lists", s, {
          name: "social",
          domains: "0.0.0.0 facebook.com\ntiktok.com\n# comment\nTikTok.com",
        })
      ).status,
    ).toBe(303);
    expect(
      (
        await submit("/policy/schedules", s, {
          name: "work",
          tz: "Europe/Berlin",
          days: "mon",
          from: "09:00",
          to: "17:30",
        })
      ).status,
    ).toBe(303);
    let draft = await getDraft(db());
    expect((draft.policy.lists as Record<string, { domains: string[] }>).social!.domains).toEqual([
      "facebook.com",
      "tiktok.com",
    ]);

    // An invalid domain: the rule form comes back with the message beside the domains field.
    const bad = await submit("/policy/rules/new", s, {
      id: "no-social",
      action: "block",
      enabled: "1",
      domains: "@social\nbad_domain!",
    });
    expect(bad.status).toBe(303);
    expect(bad.headers.get("Location")).toBe("/policy/rules/0");
    const form = await (await page("/policy/rules/0", { cookie: s.cookie })).text();
    expect(form).toMatch(/aria-invalid="true"[^>]*>@social/);
    expect(form).toContain('class="field-error">match.domains[1]: not a domain');
    const publishBad = await submit("/policy/publish", s, { message: "should fail" });
    expect(await publishBad.text()).toContain("rules[0].match.domains[1]");
    expect(await json<{ latest: number | null }>(await call("/api/v1/policy/versions"), 200)).toMatchObject({
      latest: null,
    });

    const fixed = await submit("/policy/rules/0", s, {
      id: "no-social",
      name: "No social",
      action: "block",
      enabled: "1",
      domains: "@social",
      schedule: "work",
      message: "Not now",
    });
    expect(fixed.headers.get("Location")).toBe("/policy?tab=rules&saved");
    await submit("/policy/rules/new", s, { id: "allow-all", action: "allow", enabled: "1" });
    await submit("/policy/rules/1/move", s, { to: "0" });
    await submit("/policy/rules/0/toggle", s);
    draft = await getDraft(db());
    expect((draft.policy.rules as { id: string; enabled?: boolean }[]).map((r) => [r.id, r.enabled])).toEqual(
      [
        ["allow-all", false],
        ["no-social", undefined],
      ],
    );
    await submit("/policy/users", s, { name: "alice", password: "proxy password", groups: "staff" });
    draft = await getDraft(db());
    const auth = draft.policy.auth as { users: { name: string; passwordHash: string }[] };
    expect(auth.users[0]!.passwordHash).toMatch(/^pbkdf2-sha256\$100000\$/);

    const v1 = await submit("/policy/publish", s, { message: "first" });
    expect(v1.headers.get("Location")).toBe("/policy/history?published=1");
    const versions = await json<{ latest: number }>(await call("/api/v1/policy/versions"), 200);
    expect(versions.latest).toBe(1);

    // Destructive: the first POST only asks (a confirmation page, nothing deleted).
    const asked = await submit("/policy/rules/1/delete", s);
    expect(await asked.text()).toContain("Yes, continue");
    expect(rulesOf((await getDraft(db())).policy)).toHaveLength(2);
    await submit("/policy/rules/1/delete", s, { _confirmed: "1" });
    await submit("/policy/publish", s, { message: "drop the social rule" });
    const history = await (await page("/policy/history", { cookie: s.cookie })).text();
    expect(history).toContain("v1 → v2");
    expect(history).toContain("rule no-social removed");

    const rolled = await submit("/policy/versions/1/rollback", s, { _confirmed: "1" });
    expect(rolled.headers.get("Location")).toBe("/policy/history?rolledback=3");
    const v3 = await json<{ policy: { rules: { id: string }[] }; rollbackOf: number }>(
      await call("/api/v1/policy/versions/3"),
      200,
    );
    expect(v3.rollbackOf).toBe(1);
    expect(v3.policy.rules.map((r) => r.id)).toEqual(["allow-all", "no-social"]);

    const tested = await submit("/policy/test", s, {
      url: "https://www.facebook.com/",
      client: "10.0.0.1",
      at: "2026-03-02T10:00",
      target: "latest",
    });
    const result = await tested.text();
    expect(tested.status).toBe(200);
    expect(result).toContain("no-social");
    expect(result).toMatch(/Decision: <span class="badge bad">block/);
  });
});

describe("charts outside Reports", () => {
  it("the overview and a node page say each chart's unit, bucket and zone and carry its numbers as a table", async () => {
    const s = await signedIn("admin");
    const node = await enrollNode();
    for (const path of ["/overview", `/nodes/${node.nodeId}`]) {
      const html = await (await page(path, { cookie: s.cookie })).text();
      expect(html, path).toMatch(/data-testid="chart-caption"[^>]*>requests per (1 hour|[0-9]+ min) bucket/);
      expect(html, path).toContain("Show as a table");
    }
  });
});
