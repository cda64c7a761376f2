// The rollout panel and the site filter in Chromium, and Chromium itself following a site's PAC
// file (--proxy-pac-url) to a node. Screenshots: test-results/screenshots/fleet-*.png.
import http from "node:http";
import type net from "node:net";
import path from "node:path";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BOOTSTRAP, closeTab, type Harness, openTab, SCREENSHOTS, startHarness } from "./harness";

let h: Harness;
const ADMIN = { name: "fleet-admin", password: "fleet admin password 1" };
let proxy: http.Server;
let proxyPort = 0;
const proxied: string[] = [];
let rolloutId = "";

async function api<T = Record<string, unknown>>(
  method: string,
  route: string,
  body?: unknown,
  token = BOOTSTRAP,
) {
  const response = await fetch(`${h.url}${route}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

async function enroll(site: string, hostname: string) {
  const { key } = await api<{ key: string }>("POST", "/api/v1/enrollment-keys", {
    name: `${site} key`,
    site,
  });
  return api<{ nodeId: string; nodeToken: string }>("POST", "/api/agent/v1/enroll", {
    enrollmentKey: key,
    instanceId: `browser-fleet-${hostname}`,
    hostname,
    agentVersion: "0.1.0",
    proxyKind: "builtin",
  });
}

async function ack(token: string, version: { version: number; hash: string }) {
  const response = await fetch(`${h.url}/api/agent/v1/status`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      appliedVersion: version.version,
      appliedHash: version.hash,
      state: "applied",
      proxy: { kind: "builtin", listen: `127.0.0.1:${proxyPort}`, version: "builtin/0.1.0" },
      spool: { pendingChunks: 0, pendingBytes: 0, oldestPendingAt: null, droppedRecords: 0 },
      agentVersion: "0.1.0",
      uptimeSeconds: 5,
    }),
  });
  if (response.status !== 204) throw new Error(`status ${response.status}`);
}

beforeAll(async () => {
  // Stands in for a node's proxy on loopback: answers every proxied request itself.
  proxy = http.createServer((req, res) => {
    proxied.push(req.url ?? "");
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<h1>Answered by the beta node (via the site's PAC file)</h1>");
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  proxyPort = (proxy.address() as net.AddressInfo).port;
  h = await startHarness();
  await api("POST", "/api/v1/sites", { name: "alpha", description: "Berlin office" });
  await api("POST", "/api/v1/sites", {
    name: "beta",
    description: "Paris office",
    settings: { bypass: ["10.9.0.0/16"] },
  });
  const alpha = await enroll("alpha", "proxy-alpha-1");
  const beta1 = await enroll("beta", "proxy-beta-1");
  const beta2 = await enroll("beta", "proxy-beta-2");
  const v1 = await api<{ version: number; hash: string }>("POST", "/api/v1/policy/versions", {
    policy: { rules: [], defaultAction: "allow" },
    message: "v1",
  });
  for (const n of [alpha, beta1, beta2]) await ack(n.nodeToken, v1);
  const rollout = await api<{ id: string; toVersion: number; toHash: string }>("POST", "/api/v1/rollouts", {
    policy: {
      rules: [{ id: "no-games", action: "block", match: { domains: ["games.example"] } }],
      defaultAction: "allow",
    },
    message: "block games, alpha first",
    ring: { site: "alpha" },
    soakSeconds: 3600,
  });
  rolloutId = rollout.id;
  await ack(alpha.nodeToken, { version: rollout.toVersion, hash: rollout.toHash });
  await api("POST", "/api/v1/rollouts/evaluate");
}, 180_000);

afterAll(async () => {
  await h?.stop();
  await new Promise((resolve) => proxy?.close(resolve));
});

describe("fleet dashboard in Chromium", () => {
  it("shows the soaking rollout: ring progress, held nodes, gate figures", async () => {
    const tab = await openTab(h);
    const { page } = tab;
    await page.goto("/setup");
    await page.fill('input[name="token"]', BOOTSTRAP);
    await page.fill('input[name="name"]', ADMIN.name);
    await page.fill('input[name="password"]', ADMIN.password);
    await page.fill('input[name="password2"]', ADMIN.password);
    await Promise.all([page.waitForURL("**/overview"), page.click('button[type="submit"]')]);
    await page.click('nav a[href="/rollouts"]');
    const panel = page.locator('[data-testid="rollout-panel"]').first();
    expect(await panel.getAttribute("data-state")).toBe("soaking");
    expect(await page.textContent('[data-testid="ring-progress"]')).toMatch(/1\s*\/ 1/);
    expect(await page.textContent('[data-testid="held-progress"]')).toMatch(/2\s*\/ 2/);
    expect(await page.textContent('[data-testid="gates"]')).toContain("Error share");
    expect(await page.isVisible('[data-testid="promote"]')).toBe(true);
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "rollout-01-rollout-soaking");
  });

  it("filters the node list by site and shows held nodes", async () => {
    const tab = await openTab(h);
    const { page } = tab;
    await page.goto("/login");
    await page.fill('input[name="name"]', ADMIN.name);
    await page.fill('input[name="password"]', ADMIN.password);
    await Promise.all([page.waitForURL("**/overview"), page.click('button[type="submit"]')]);
    await page.goto("/nodes");
    expect(await page.locator('[data-testid="fleet"] tbody tr').count()).toBe(3);
    await page.selectOption('[data-testid="site-select"]', "beta");
    await Promise.all([page.waitForURL("**/nodes?site=beta"), page.click('[data-testid="site-apply"]')]);
    const rows = page.locator('[data-testid="fleet"] tbody tr');
    expect(await rows.count()).toBe(2);
    for (const text of await rows.allTextContents()) {
      expect(text).toContain("beta");
      expect(text).toContain("held");
    }
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "rollout-02-nodes-site-filter");
  });

  it("narrows the Reports page to one site with the site picker", async () => {
    const tab = await openTab(h);
    const { page } = tab;
    await page.goto("/login");
    await page.fill('input[name="name"]', ADMIN.name);
    await page.fill('input[name="password"]', ADMIN.password);
    await Promise.all([page.waitForURL("**/overview"), page.click('button[type="submit"]')]);
    await page.goto("/reports");
    expect(await page.textContent('[data-testid="range-text"]')).toContain("whole fleet");
    await page.selectOption('[data-testid="range-form"] [data-testid="site-select"]', "beta");
    await Promise.all([
      page.waitForURL("**/reports?*site=beta*"),
      page.click('[data-testid="range-form"] button[type="submit"]'),
    ]);
    expect(await page.textContent('[data-testid="range-text"]')).toContain("· site beta");
    expect(await page.inputValue('[data-testid="range-form"] [data-testid="site-select"]')).toBe("beta");
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "rollout-02b-reports-site-filter");
  });

  it("halts the rollout by hand: the panel says the ring went back", async () => {
    const tab = await openTab(h);
    const { page } = tab;
    await page.goto("/login");
    await page.fill('input[name="name"]', ADMIN.name);
    await page.fill('input[name="password"]', ADMIN.password);
    await Promise.all([page.waitForURL("**/overview"), page.click('button[type="submit"]')]);
    await page.goto("/rollouts");
    await Promise.all([page.waitForLoadState("load"), page.click('[data-testid="halt"]')]);
    await page.waitForSelector('[data-testid="rollout-panel"][data-state="halted"]');
    expect(await page.textContent(".notice.error")).toMatch(/Halted: halted by hand.*ring went back to v1/s);
    const rollout = await api<{ state: string; rollbackVersion: number }>(
      "GET",
      `/api/v1/rollouts/${rolloutId}`,
    );
    expect(rollout).toMatchObject({ state: "halted", rollbackVersion: 3 });
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "rollout-03-rollout-halted");
  });

  it("Chromium follows the site's PAC file to a healthy node", async () => {
    const browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        `--proxy-pac-url=${h.url}/pac/beta.pac`,
      ],
    });
    try {
      const page = await browser.newPage();
      await page.goto("http://pac-check.example/hello", { timeout: 30_000 });
      expect(await page.textContent("h1")).toContain("beta node");
      expect(proxied).toContain("http://pac-check.example/hello");
      await page.screenshot({ path: path.join(SCREENSHOTS, "rollout-04-pac-proxied.png"), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});
