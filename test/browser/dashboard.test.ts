import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BOOTSTRAP,
  closeTab,
  type Harness,
  openTab,
  SCREENSHOTS,
  seedTraffic,
  signIn,
  startHarness,
} from "./harness";

// One master for the file: the tests walk the life of a deployment in order (setup first).
let h: Harness;
const ADMIN = { name: "alice", password: "correct horse battery staple" };
const VIEWER = { name: "victor", password: "viewer password 123" };
let seeded: { nodeId: string; records: number };

beforeAll(async () => {
  h = await startHarness();
});

afterAll(async () => {
  await h?.stop();
});

describe("dashboard in Chromium", () => {
  it("first-run setup creates the admin and opens the overview", async () => {
    const tab = await openTab(h);
    const { page } = tab;
    await page.goto("/");
    await page.waitForURL("**/setup");
    await page.fill('input[name="token"]', BOOTSTRAP);
    await page.fill('input[name="name"]', ADMIN.name);
    await page.fill('input[name="password"]', ADMIN.password);
    await page.fill('input[name="password2"]', ADMIN.password);
    await Promise.all([page.waitForURL("**/overview"), page.click('button[type="submit"]')]);
    expect(await page.textContent('[data-testid="who"]')).toBe(ADMIN.name);
    // Setup is closed now.
    await page.goto("/setup");
    expect(new URL(page.url()).pathname).toBe("/overview");
    seeded = await seedTraffic(h);
    await page.goto("/overview");
    await page.waitForSelector(".chart canvas, .chart .empty");
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "01-overview-1280-light");
  });

  it("refuses a wrong password and signs in with the right one", async () => {
    const tab = await openTab(h, { dark: true });
    const { page } = tab;
    await page.goto("/login");
    await page.fill('input[name="name"]', ADMIN.name);
    await page.fill('input[name="password"]', "not my password");
    await page.click('button[type="submit"]');
    await page.waitForSelector(".notice.error");
    expect(await page.textContent(".notice.error")).toContain("wrong user name or password");
    expect(new URL(page.url()).pathname).toBe("/login");
    await signIn(page, ADMIN.name, ADMIN.password);
    await page.waitForSelector(".chart canvas");
    await page.waitForFunction(() => document.querySelectorAll("table[data-top] tbody tr").length > 0);
    expect(await page.textContent("table[data-top]")).toContain("facebook.com");
    await page.goto(`/nodes/${seeded.nodeId}`);
    await page.waitForSelector(".chart canvas");
    await page.goto("/overview");
    await page.waitForSelector(".chart canvas");
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "02-overview-1280-dark");
  });

  it("creates an enrollment key and shows it once with the enroll command", async () => {
    const tab = await openTab(h, { width: 390, height: 844 });
    const { page } = tab;
    await signIn(page, ADMIN.name, ADMIN.password);
    await page.goto("/settings/keys");
    await page.fill('input[name="name"]', "branch offices");
    await page.fill('input[name="maxUses"]', "5");
    await page.click('button:has-text("Create key")');
    const line = await page.textContent("#enroll-line");
    expect(line).toMatch(
      new RegExp(`^fleetgate-agent enroll --master ${h.url} --key fge_[A-Za-z0-9_-]{43}$`),
    );
    await page.goto("/settings/keys");
    expect(await page.locator("#enroll-line").count()).toBe(0);
    expect(await page.textContent("table")).toContain("branch offices");
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "03-enrollment-key-390-light");
  });

  it("edits and publishes rules through the forms", async () => {
    const tab = await openTab(h);
    const { page } = tab;
    await signIn(page, ADMIN.name, ADMIN.password);
    await page.goto("/policy?tab=lists");
    await page.fill('input[name="name"]', "social");
    await page.fill('textarea[name="domains"]', ["facebook.com", "tiktok.com", "instagram.com"].join("\n"));
    await page.click('button:has-text("Save list to draft")');
    await page.waitForURL("**/policy?tab=lists&saved");
    await page.goto("/policy?tab=rules");
    await page.click('a:has-text("Add rule")');
    await page.fill('input[name="id"]', "no-social");
    await page.fill('input[name="name"]', "No social media");
    await page.fill('textarea[name="domains"]', "@social");
    await page.fill('input[name="message"]', "Social media is blocked.");
    await page.click('button:has-text("Save rule to draft")');
    await page.waitForURL("**/policy?tab=rules&saved");
    expect(await page.textContent('[data-testid="rules"]')).toContain("no-social");
    expect(await page.textContent('[data-testid="validation"]')).toContain("The draft validates");
    await page.screenshot({ path: `${SCREENSHOTS}/04a-policy-editor-1280-light.png`, fullPage: true });
    await page.fill('[data-testid="publish-form"] input[name="message"]', "Block social media");
    await Promise.all([
      page.waitForURL("**/policy/history?published=1"),
      page.click('button:has-text("Publish")'),
    ]);
    expect(await page.textContent(".notice.ok")).toContain("Published v1");

    // Second version: edit the rule (another domain) and add one that allows everything else.
    await page.goto("/policy/rules/0");
    await page.fill('textarea[name="domains"]', "@social\nreddit.com");
    await page.click('button:has-text("Save rule to draft")');
    await page.waitForURL("**/policy?tab=rules&saved");
    await page.fill('[data-testid="publish-form"] input[name="message"]', "Also block reddit");
    await Promise.all([
      page.waitForURL("**/policy/history?published=2"),
      page.click('button:has-text("Publish")'),
    ]);
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "04-policy-published-1280-light");
  });

  it("shows the diff between versions and rolls back", async () => {
    const tab = await openTab(h, { dark: true });
    const { page } = tab;
    await signIn(page, ADMIN.name, ADMIN.password);
    await page.goto("/policy/history?from=1&to=2");
    const diff = await page.textContent('[data-testid="diff"]');
    expect(diff).toContain("v1 → v2");
    expect(diff).toContain("rule no-social: match changed");
    await Promise.all([
      page.waitForURL("**/policy/history?rolledback=3"),
      page.click('button:has-text("Roll back to v1")'),
    ]);
    expect(await page.textContent(".notice.ok")).toContain("v3 is now the latest");
    expect(await page.textContent('[data-testid="versions"]')).toContain("rollback to v1");
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "05-history-diff-1280-dark");
  });

  it("tests a request and shows the deciding rule and why", async () => {
    const tab = await openTab(h, { width: 390, height: 844, dark: true });
    const { page } = tab;
    await signIn(page, ADMIN.name, ADMIN.password);
    await page.goto("/policy/test");
    await page.fill('input[name="url"]', "https://www.tiktok.com/foryou");
    await page.fill('input[name="client"]', "10.1.2.3");
    await page.click('button:has-text("Test")');
    const result = await page.textContent('[data-testid="test-result"]');
    expect(result).toContain("block");
    expect(result).toContain("no-social");
    expect(result).toContain("match");
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "06-request-tester-390-dark");
  });

  it("opens reports for a range, filters by node and exports a CSV", async () => {
    const tab = await openTab(h);
    const { page } = tab;
    await signIn(page, ADMIN.name, ADMIN.password);
    await page.goto("/reports?range=7d");
    await page.waitForFunction(() => document.querySelector('[data-key="requests"]')?.textContent !== "…");
    expect(await page.textContent('[data-key="requests"]')).toBe(String(seeded.records));
    await page.waitForSelector(".chart canvas");
    await page.click('a:has-text("1 h")');
    await page.waitForURL("**/reports?range=1h");
    await page.selectOption('select[name="node"]', seeded.nodeId);
    await Promise.all([page.waitForURL("**/reports?range=custom**"), page.click('button:has-text("Apply")')]);
    expect(page.url()).toContain(`node=${seeded.nodeId}`);
    await page.waitForFunction(() => document.querySelectorAll("table[data-top] tbody tr").length >= 5);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.click('[data-testid="csv-host"]'),
    ]);
    const csv = readFileSync((await download.path())!, "utf8");
    expect(csv.split(/\r?\n/)[0]).toMatch(/host|key/i);
    expect(csv).toContain("facebook.com");
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "07-reports-1280-light");
  });

  it("shows reports at phone width", async () => {
    const tab = await openTab(h, { width: 390, height: 844 });
    await signIn(tab.page, ADMIN.name, ADMIN.password);
    await tab.page.goto("/reports?range=24h");
    await tab.page.waitForSelector(".chart canvas");
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "08-reports-390-light");
  });

  it("a viewer sees the policy but cannot publish", async () => {
    const admin = await openTab(h);
    await signIn(admin.page, ADMIN.name, ADMIN.password);
    await admin.page.goto("/settings/users");
    await admin.page.fill('form[action="/settings/users"] input[name="name"]', VIEWER.name);
    await admin.page.selectOption('form[action="/settings/users"] select[name="role"]', "viewer");
    await admin.page.fill('form[action="/settings/users"] input[name="password"]', VIEWER.password);
    await admin.page.click('button:has-text("Add user")');
    expect(await admin.page.textContent(".notice.ok")).toContain(`User ${VIEWER.name} added as viewer`);
    await admin.context.close();

    const tab = await openTab(h);
    const { page } = tab;
    await signIn(page, VIEWER.name, VIEWER.password);
    await page.goto("/policy");
    expect(await page.textContent('[data-testid="rules"]')).toContain("no-social");
    expect(await page.locator('button:has-text("Publish")').count()).toBe(0);
    expect(await page.locator('a:has-text("Add rule")').count()).toBe(0);
    expect(tab.errors).toEqual([]);
    // Forcing the form anyway: the server refuses (and Chromium logs that one 403).
    const status = await page.evaluate(async () => {
      const body = new URLSearchParams({ _csrf: document.body.dataset.csrf ?? "", message: "sneaky" });
      return (await fetch("/policy/publish", { method: "POST", body })).status;
    });
    expect(status).toBe(403);
    const versions = await (
      await fetch(`${h.url}/api/v1/policy/versions`, { headers: { Authorization: `Bearer ${BOOTSTRAP}` } })
    ).json();
    expect((versions as { latest: number }).latest).toBe(3);
    expect(tab.errors).toHaveLength(1);
    expect(tab.errors[0]).toContain("status of 403");
    await closeTab(tab, "09-viewer-policy-1280-light");
  });

  it("logs out", async () => {
    const tab = await openTab(h);
    const { page } = tab;
    await signIn(page, ADMIN.name, ADMIN.password);
    await page.goto("/settings/audit");
    expect(await page.textContent("table")).toContain("policy.rollback");
    await Promise.all([page.waitForURL("**/login?bye"), page.click('button:has-text("Log out")')]);
    expect(await page.textContent(".notice.ok")).toContain("signed out");
    await page.goto("/overview");
    expect(new URL(page.url()).pathname).toBe("/login");
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "10-logged-out-1280-light");
  });
});
