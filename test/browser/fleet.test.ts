// The fleet admin's dashboard in Chromium against the real master: 32 nodes enrolled through the
// agent API, traffic ingested through the log endpoint, one node rejecting the policy. Covers
// search and filters, drill-down, the time-zone switch, the draft diff and hit counts, a webhook
// alert delivered to a receiver on loopback, a confirmation without JavaScript, and axe-core.
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { gzipSync } from "node:zlib";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALERT_SIGNATURE_HEADER, ALERT_TIMESTAMP_HEADER, verifyAlert } from "../../protocol/alerts";
import { DASHBOARD_PAGES } from "../helpers/dashboard-pages.mjs";
import {
  api,
  BOOTSTRAP,
  closeTab,
  type Harness,
  openTab,
  seedTraffic,
  signIn,
  startHarness,
} from "./harness";

const ADMIN = { name: "fleet-admin", password: "correct horse battery staple" };
const CITIES = ["berlin", "paris", "madrid", "rome", "vienna", "oslo", "lisbon", "prague"];
const AXE = readFileSync(path.resolve(import.meta.dirname, "../../node_modules/axe-core/axe.min.js"), "utf8");
const SECRET = "webhook-shared-secret-0123456789";

let h: Harness;
let receiver: http.Server;
let receiverUrl: string;
const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
const fleet: { nodeId: string; nodeToken: string; hostname: string }[] = [];
let rejectedNode: { nodeId: string; hostname: string };
let seededNode: string;

async function enroll(key: string, i: number) {
  const hostname = `proxy-${CITIES[i % CITIES.length]}-${Math.floor(i / CITIES.length) + 1}`;
  const response = await fetch(`${h.url}/api/agent/v1/enroll`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      enrollmentKey: key,
      instanceId: `fleet-test-${i}`,
      hostname,
      agentVersion: i % 4 === 0 ? "0.2.0" : "0.1.0",
      proxyKind: "builtin",
    }),
  });
  if (response.status !== 201) throw new Error(`enroll ${i}: ${response.status} ${await response.text()}`);
  const body = (await response.json()) as { nodeId: string; nodeToken: string };
  return { ...body, hostname };
}

async function status(token: string, report: Record<string, unknown>) {
  const response = await fetch(`${h.url}/api/agent/v1/status`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({
      appliedHash: null,
      proxy: { kind: "builtin", listen: "127.0.0.1:3128", version: "builtin-0.1.0" },
      spool: { pendingChunks: 0, pendingBytes: 0, oldestPendingAt: null, droppedRecords: 0 },
      agentVersion: "0.1.0",
      uptimeSeconds: 100,
      ...report,
    }),
  });
  if (response.status !== 204) throw new Error(`status: ${response.status} ${await response.text()}`);
}

async function upload(token: string, chunk: string, hosts: string[], clients: number) {
  const now = Date.now();
  const lines = Array.from({ length: 60 }, (_, i) =>
    JSON.stringify({
      ts: new Date(now - (i % 50) * 60_000 - 5_000).toISOString(),
      client: `10.9.0.${(i % clients) + 1}`,
      method: "CONNECT",
      scheme: "connect",
      host: hosts[i % hosts.length],
      port: 443,
      status: 200,
      action: "allow",
      bytesIn: 1000,
      bytesOut: 5000,
      durationMs: 5,
      requestId: `${chunk}-${i}`,
    }),
  );
  const response = await fetch(`${h.url}/api/agent/v1/logs`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${token}`,
      "Content-Type": "application/x-ndjson",
      "Content-Encoding": "gzip",
      "X-Fleetgate-Chunk": chunk,
    },
    body: gzipSync(`${lines.join("\n")}\n`),
  });
  if (!response.ok) throw new Error(`upload: ${response.status} ${await response.text()}`);
}

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => {
      body += d;
    });
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  h = await startHarness({ vars: { ENROLL_RATE_LIMIT: "1000" }, testScheduled: true });
  // First-run setup through the page, as a person does it.
  const tab = await openTab(h);
  await tab.page.goto("/setup");
  await tab.page.fill('input[name="token"]', BOOTSTRAP);
  await tab.page.fill('input[name="name"]', ADMIN.name);
  await tab.page.fill('input[name="password"]', ADMIN.password);
  await tab.page.fill('input[name="password2"]', ADMIN.password);
  await Promise.all([tab.page.waitForURL("**/overview"), tab.page.click('button[type="submit"]')]);
  await tab.context.close();
  await api(h, "POST", "/api/v1/policy/versions", {
    message: "block social",
    policy: {
      rules: [{ id: "no-social", action: "block", match: { domains: ["facebook.com", "tiktok.com"] } }],
      defaultAction: "allow",
    },
  });
  seededNode = (await seedTraffic(h)).nodeId;
  const { key } = await api<{ key: string }>(h, "POST", "/api/v1/enrollment-keys", {
    name: "fleet",
    maxUses: 100,
  });
  for (let i = 0; i < 31; i++) fleet.push(await enroll(key, i));
  for (const [i, n] of fleet.entries()) {
    if (i === 5)
      await status(n.nodeToken, {
        appliedVersion: null,
        state: "rejected",
        error: "squid -k parse: line 3: bad acl",
      });
    else if (i % 3 === 0) await status(n.nodeToken, { appliedVersion: 1, state: "applied" });
  }
  rejectedNode = fleet[5]!;
  await upload(fleet[0]!.nodeToken, `${Date.now().toString(36)}.1`, ["intranet.example", "wiki.example"], 4);
  await upload(fleet[1]!.nodeToken, `${Date.now().toString(36)}.1`, ["intranet.example"], 2);
  // Ingestion flushes within a second or so.
  for (let i = 0; i < 60; i++) {
    const s = await api<{ requests: number }>(h, "GET", "/api/v1/reports/summary");
    if (s.requests >= 520) break;
    await new Promise((r) => setTimeout(r, 500));
  }
}, 240_000);

afterAll(async () => {
  await h?.stop();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
});

async function signedInTab(options: Parameters<typeof openTab>[1] = {}) {
  const tab = await openTab(h, options);
  await signIn(tab.page, ADMIN.name, ADMIN.password);
  return tab;
}

describe("fleet dashboard in Chromium (32 nodes)", () => {
  it("finds nodes by search, filters and sorting, across server-side pages", async () => {
    const tab = await signedInTab();
    const { page } = tab;
    await page.goto("/nodes");
    expect(await page.textContent('[data-testid="node-count"]')).toContain("32 nodes");
    expect(await page.locator('[data-testid="fleet"] tbody tr').count()).toBe(25);
    await page.click('nav.pager >> text="Next →"');
    expect(await page.locator('[data-testid="fleet"] tbody tr').count()).toBe(7);
    await page.fill('input[name="q"]', "berlin");
    await Promise.all([
      page.waitForURL(/q=berlin/),
      page.click('[data-testid="node-filters"] button[type="submit"]'),
    ]);
    const names = await page.locator('[data-testid="fleet"] tbody td.key').allTextContents();
    expect(names.length).toBeGreaterThanOrEqual(4);
    expect(names.every((n) => n.includes("berlin"))).toBe(true);
    // Sorting: Name descending.
    await page.click('a[data-sort="hostname"]');
    await page.waitForURL(/sort=-hostname/);
    const sorted = await page.locator('[data-testid="fleet"] tbody td.key').allTextContents();
    expect(sorted).toEqual([...sorted].sort().reverse());
    // A sync filter: the rejecting node, and its page says what to do next.
    await page.goto("/nodes?sync=rejected");
    expect(await page.locator('[data-testid="fleet"] tbody td.key').allTextContents()).toEqual([
      rejectedNode.hostname,
    ]);
    await closeTab(tab, "fleet-01-nodes-filtered-rejected");
    const node = await signedInTab();
    await node.page.goto(`/nodes/${rejectedNode.nodeId}`);
    expect(await node.page.textContent('[data-testid="next-step"]')).toContain("Next step");
    expect(await node.page.textContent('[data-testid="events"]')).toMatch(/Rejected policy.*bad acl/);
    expect(await node.page.textContent('[data-testid="events"]')).toMatch(/Enrolled as proxy-/);
    expect(await node.page.getAttribute('[data-testid="node-reports"]', "href")).toBe(
      `/reports?node=${rejectedNode.nodeId}`,
    );
    expect(node.errors).toEqual([]);
    await closeTab(node, "fleet-02-node-rejected-next-step");
  });

  it("drills down from a top host to the clients that used it", async () => {
    const tab = await signedInTab();
    const { page } = tab;
    await page.goto("/reports?range=1h");
    const hostLink = page.locator('table[data-top-list="host"] a', { hasText: "intranet.example" });
    await Promise.all([page.waitForURL(/\/requests\?/), hostLink.click()]);
    expect(new URL(page.url()).searchParams.get("host")).toBe("intranet.example");
    await page.waitForSelector('[data-breakdown="client"]');
    const clients = await page.locator('[data-breakdown="client"] li a').allTextContents();
    expect(clients.length).toBeGreaterThanOrEqual(2);
    expect(clients.every((c) => c.startsWith("10.9.0."))).toBe(true);
    // "View all" pages beyond the first 10.
    await page.goto("/reports/top/host?range=24h");
    expect(await page.locator('table[data-top-list="host"] tbody tr').count()).toBeGreaterThanOrEqual(5);
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "fleet-03-drilldown-host-clients");
  });

  it("shows the same numbers in the browser's zone and in UTC, labelled with the zone", async () => {
    const tab = await signedInTab({ timezoneId: "Asia/Kolkata" });
    const { page } = tab;
    await page.goto("/reports?range=24h");
    // The page script tells the server the browser's zone once, and the page comes back in it
    // (Chromium's ICU may name the zone by its old alias, Asia/Calcutta).
    await page.waitForFunction(() => /^Asia\/(Kolkata|Calcutta)$/.test(document.body.dataset.tz ?? ""));
    const local = await page.textContent('[data-testid="range-text"]');
    expect(local).toMatch(/GMT\+5:30|IST/);
    expect(await page.textContent('[data-testid="chart-caption"]')).toMatch(
      /times in Asia\/(Kolkata|Calcutta)/,
    );
    const numbersLocal = await page.textContent('[data-testid="summary"]');
    await closeTab(tab, "fleet-04-reports-asia-kolkata");
    const utc = await signedInTab({ timezoneId: "Asia/Kolkata" });
    await utc.page.goto("/reports?range=24h");
    await utc.page.waitForFunction(() => /^Asia\/(Kolkata|Calcutta)$/.test(document.body.dataset.tz ?? ""));
    await utc.page.selectOption('[data-testid="tz-form"] select[name="tz"]', "UTC");
    await Promise.all([utc.page.waitForURL(/\/reports/), utc.page.click('[data-testid="tz-form"] button')]);
    await utc.page.waitForFunction(() => document.body.dataset.tz === "UTC");
    expect(await utc.page.textContent('[data-testid="range-text"]')).toMatch(/\d\d:\d\d UTC – .* UTC/);
    expect(await utc.page.textContent('[data-testid="summary"]')).toBe(numbersLocal);
    // The chart's axis labels are drawn by uPlot in the chosen zone: its first x tick is a UTC hour.
    expect(utc.errors).toEqual([]);
    await closeTab(utc, "fleet-05-reports-utc");
  });

  it("shows rule hit counts and the draft against the published version", async () => {
    const tab = await signedInTab();
    const { page } = tab;
    await page.goto("/policy");
    // seedTraffic blocked 160 requests with rule no-social in the last 2 hours.
    expect((await page.textContent('[data-testid="hits-no-social"]'))?.trim()).toBe("160");
    expect(await page.locator('[data-testid="draft-diff"]').count()).toBe(0);
    await page.goto("/policy?tab=settings");
    await page.selectOption('select[name="defaultAction"]', "block");
    await Promise.all([
      page.waitForURL(/saved/),
      page.click('form[action="/policy/settings"] button[type="submit"]'),
    ]);
    await page.goto("/policy");
    expect(await page.textContent('[data-testid="draft-diff"]')).toContain("defaultAction changed");
    // Publish, then the history page says how many nodes applied it.
    await page.fill('input[name="message"]', "default block");
    await Promise.all([page.waitForURL(/published=2/), page.click('[data-testid="publish-form"] button')]);
    expect(await page.textContent('[data-testid="applied"]')).toMatch(/v2 applied on \d+ of 32 nodes/);
    expect(tab.errors).toEqual([]);
    await closeTab(tab, "fleet-06-policy-applied");
  });

  it("delivers a signed test alert and a deduplicated policy-rejected alert to a webhook on loopback", async () => {
    const tab = await signedInTab();
    const { page } = tab;
    await page.goto("/settings/alerts");
    await page.fill('input[name="url"]', receiverUrl);
    await page.fill('input[name="secret"]', SECRET);
    await page.click('[data-testid="alerts-form"] button[type="submit"]');
    await page.waitForSelector("text=Alerts saved.");
    await page.click('[data-testid="send-test"]');
    await page.waitForSelector("text=Test alert delivered");
    const test = received.find((r) => JSON.parse(r.body).kind === "test");
    expect(test).toBeDefined();
    const ts = Number(test!.headers[ALERT_TIMESTAMP_HEADER.toLowerCase()]);
    const sig = String(test!.headers[ALERT_SIGNATURE_HEADER.toLowerCase()]);
    expect(await verifyAlert(SECRET, ts, test!.body, sig)).toBe(true);
    expect(await verifyAlert("another-secret-0123456789", ts, test!.body, sig)).toBe(false);
    // The cron's alert check, twice: one alert for the rejecting node, not two.
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${h.url}/__scheduled?cron=${encodeURIComponent("* * * * *")}`);
      expect(r.ok).toBe(true);
    }
    const deadline = Date.now() + 20_000;
    const rejected = () =>
      received.filter((r) => {
        const p = JSON.parse(r.body);
        return p.kind === "policy.rejected" && p.subject === rejectedNode.nodeId;
      });
    while (rejected().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(rejected()).toHaveLength(1);
    expect(JSON.parse(rejected()[0]!.body).summary).toContain("bad acl");
    await page.goto("/settings/alerts");
    expect(await page.content()).not.toContain(SECRET);
    expect(await page.textContent('[data-testid="alerts"]')).toContain("policy.rejected");
    await closeTab(tab, "fleet-07-alerts");
  });

  it("confirms a destructive action on the server when JavaScript is off", async () => {
    const { id } = await api<{ id: string }>(h, "POST", "/api/v1/enrollment-keys", { name: "no-js key" });
    const tab = await signedInTab({ javaScript: false });
    const { page } = tab;
    await page.goto("/settings/keys");
    await page.click(`form[action="/settings/keys/${id}/revoke"] button`);
    await page.waitForSelector('[data-testid="confirm"]');
    const keys = async () =>
      (
        await api<{ keys: { id: string; revokedAt: number | null }[] }>(h, "GET", "/api/v1/enrollment-keys")
      ).keys.find((k) => k.id === id);
    expect((await keys())?.revokedAt).toBeNull();
    await page.screenshot({
      path: path.join(path.dirname(AXE_SHOTS), "fleet-08-confirm-no-js.png"),
      fullPage: true,
    });
    await page.click('[data-testid="confirm"] button[type="submit"]');
    await page.waitForURL("**/settings/keys**");
    expect((await keys())?.revokedAt).not.toBeNull();
    await closeTab(tab, "fleet-09-key-revoked-no-js");
  });

  it("has no axe-core WCAG 2.1 AA violations on any page, light and dark, 1280 and 390 px", async () => {
    const pages = [...DASHBOARD_PAGES, `/nodes/${rejectedNode.nodeId}`, `/nodes/${seededNode}`];
    const failures: string[] = [];
    for (const dark of [false, true]) {
      for (const width of [1280, 390]) {
        const tab = await signedInTab({ dark, width, height: width === 390 ? 844 : 860 });
        for (const url of pages) {
          await tab.page.goto(url);
          failures.push(...(await axe(tab.page, `${url} ${dark ? "dark" : "light"} ${width}`)));
          if (width === 390) {
            // Phone: a compact header, and no table wider than the screen without its own scroller.
            const header = await tab.page.evaluate(
              () => document.querySelector("header.top")?.getBoundingClientRect().height ?? 0,
            );
            if (header > 100) failures.push(`${url} 390: header is ${header} px tall`);
            const overflow = await tab.page.evaluate(
              () => document.documentElement.scrollWidth > window.innerWidth + 1,
            );
            if (overflow) failures.push(`${url} 390: the page scrolls sideways`);
          }
        }
        await tab.page.goto("/reports");
        await closeTab(tab, `fleet-10-reports-${width}-${dark ? "dark" : "light"}`);
        const out = await openTab(h, { dark, width });
        await out.page.goto("/login");
        failures.push(...(await axe(out.page, `/login ${dark ? "dark" : "light"} ${width}`)));
        await out.context.close();
      }
    }
    expect(failures).toEqual([]);
  }, 600_000);
});

const AXE_SHOTS = path.resolve(import.meta.dirname, "../../test-results/screenshots/x");

/** Runs axe-core in the page (evaluated over CDP, so the page's CSP stays as it is). */
async function axe(page: Page, label: string): Promise<string[]> {
  await page.evaluate(AXE);
  const result = (await page.evaluate(() =>
    (window as unknown as { axe: { run: (o: unknown) => Promise<unknown> } }).axe.run({
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
    }),
  )) as { violations: { id: string; impact: string; nodes: { target: string[] }[] }[] };
  return result.violations.map(
    (v) =>
      `${label}: ${v.id} (${v.impact}) at ${v.nodes
        .slice(0, 3)
        .map((n) => n.target.join(" "))
        .join(", ")}`,
  );
}
