import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP, closeTab, type Harness, openTab, seedTraffic, signIn, startHarness } from "./harness";

// Its own master: an admin made through the API, traffic through the real /logs path.
let h: Harness;
const ADMIN = { name: "rita", password: "request search password 1" };

async function api(method: string, path: string, body: unknown) {
  const response = await fetch(`${h.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${BOOTSTRAP}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
}

beforeAll(async () => {
  h = await startHarness();
  await api("POST", "/api/v1/users", { name: ADMIN.name, role: "admin", password: ADMIN.password });
  await api("POST", "/api/v1/policy/versions", {
    message: "block social",
    policy: {
      rules: [{ id: "no-social", action: "block", match: { domains: ["facebook.com", "tiktok.com"] } }],
      defaultAction: "allow",
    },
  });
  const seeded = await seedTraffic(h);
  // Searchable once the ingest coalescer has flushed (about a second).
  for (let i = 0; i < 120; i++) {
    const res = await fetch(
      `${h.url}/api/v1/requests/export.ndjson?from=${Date.now() - 3 * 3_600_000}&to=${Date.now()}`,
      {
        headers: { Authorization: `Bearer ${BOOTSTRAP}` },
      },
    );
    if ((await res.text()).trimEnd().split("\n").length > seeded.records) break;
    await new Promise((r) => setTimeout(r, 500));
  }
});

afterAll(async () => {
  await h?.stop();
});

describe("request search page in Chromium", () => {
  it("finds blocked requests, pages with the cursor, exports NDJSON and opens one in the request tester", async () => {
    const tab = await openTab(h);
    const { page } = tab;
    await signIn(page, ADMIN.name, ADMIN.password);
    await Promise.all([page.waitForURL("**/requests"), page.click('header nav a:has-text("Requests")')]);
    // The default window is the last hour: the seed put 400 records over two hours.
    const rows = page.locator('[data-testid="requests"] tbody tr');
    expect(await rows.count()).toBeGreaterThan(50);

    await page.selectOption('select[name="action"]', "block");
    await page.fill('input[name="host"]', "facebook.com");
    await Promise.all([page.waitForURL("**/requests?**"), page.click('button:has-text("Search")')]);
    const blocked = await rows.allTextContents();
    expect(blocked.length).toBeGreaterThan(5);
    for (const text of blocked) {
      expect(text).toContain("facebook.com");
      expect(text).toContain("block");
      expect(text).toContain("no-social");
      expect(text).toContain("proxy-berlin-1");
    }

    // Pages of 10 with the opaque cursor: no row twice.
    await page.goto(`${page.url()}&limit=10`);
    const first = await page
      .locator("[data-request]")
      .evaluateAll((els) => els.map((e) => e.dataset.request));
    expect(first).toHaveLength(10);
    await Promise.all([page.waitForURL("**cursor=**"), page.click('[data-testid="older"]')]);
    const second = await page
      .locator("[data-request]")
      .evaluateAll((els) => els.map((e) => e.dataset.request));
    expect(second.length).toBeGreaterThan(0);
    expect(second.filter((id) => first.includes(id))).toEqual([]);

    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.click('[data-testid="export"]'),
    ]);
    const lines = readFileSync((await download.path())!, "utf8")
      .trimEnd()
      .split("\n");
    const end = JSON.parse(lines.at(-1)!);
    expect(end).toMatchObject({ end: true, more: false });
    expect(lines.length - 1).toBe(blocked.length);
    for (const line of lines.slice(0, -1)) expect(JSON.parse(line)).toMatchObject({ host: "facebook.com" });

    // One click from a blocked row to the tester, filled with that request.
    const client = (await page.locator("[data-request] td").nth(2).textContent())!.trim();
    await Promise.all([
      page.waitForURL("**/policy/test?**"),
      page.locator('[data-testid="test-request"]').first().click(),
    ]);
    expect(await page.inputValue('input[name="url"]')).toBe("https://facebook.com/");
    expect(await page.inputValue('input[name="client"]')).toBe(client);
    expect(await page.inputValue('input[name="method"]')).toBe("CONNECT");
    await page.click('button:has-text("Test")');
    const result = await page.textContent('[data-testid="test-result"]');
    expect(result).toContain("block");
    expect(result).toContain("no-social");
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "20-request-search-1280-light");
  });

  it("says so when the window is too long, at phone width", async () => {
    const tab = await openTab(h, { width: 390, height: 844, dark: true });
    const { page } = tab;
    await signIn(page, ADMIN.name, ADMIN.password);
    await page.goto("/requests?from=2026-11-01T00:00&to=2026-11-01T12:00");
    expect(await page.textContent(".notice.error")).toContain("at most 6 h");
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "21-request-search-390-dark");
  });
});
