// Real Chromium (Debian's; Playwright gives every launch a fresh temporary profile) against the real master under `wrangler dev`. Every process started
// here is stopped by pid/process group in stop(), whatever happened in the tests.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { SEED } from "../agent/fakes/seeds";
import { startMaster } from "../helpers/master.mjs";

export const BOOTSTRAP = "fgb_browser-test-bootstrap-0123456789abcdef";
export const SCREENSHOTS = path.resolve(import.meta.dirname, "../../test-results/screenshots");

export interface Harness {
  url: string;
  browser: Browser;
  stop(): Promise<void>;
}

export async function startHarness(
  options: { vars?: Record<string, string>; testScheduled?: boolean } = {},
): Promise<Harness> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const master = await startMaster({ bootstrapToken: BOOTSTRAP, signingSeed: SEED, ...options });
  let browser: Browser;
  try {
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  } catch (error) {
    await master.stop();
    throw error;
  }
  return {
    url: master.url,
    browser,
    async stop() {
      // browser.close() ends Chromium and its children; the master helper kills wrangler's group.
      await browser.close().catch(() => {});
      await master.stop();
    },
  };
}

export interface Tab {
  context: BrowserContext;
  page: Page;
  errors: string[];
}

/** A fresh context (no cookies) with console errors and page errors collected. */
export async function openTab(
  h: Harness,
  options: {
    width?: number;
    height?: number;
    dark?: boolean;
    timezoneId?: string;
    javaScript?: boolean;
  } = {},
): Promise<Tab> {
  const context = await h.browser.newContext({
    baseURL: h.url,
    ...(options.timezoneId ? { timezoneId: options.timezoneId } : {}),
    javaScriptEnabled: options.javaScript ?? true,
    viewport: { width: options.width ?? 1280, height: options.height ?? 860 },
    colorScheme: options.dark ? "dark" : "light",
    acceptDownloads: true,
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()} (${page.url()})`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message} (${page.url()})`));
  page.on("dialog", (d) => d.accept());
  return { context, page, errors };
}

export async function closeTab(tab: Tab, screenshot: string) {
  await tab.page.screenshot({ path: path.join(SCREENSHOTS, `${screenshot}.png`), fullPage: true });
  await tab.context.close();
}

export async function signIn(page: Page, name: string, password: string) {
  await page.goto("/login");
  await page.fill('input[name="name"]', name);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL("**/overview"), page.click('button[type="submit"]')]);
}

export async function api<T>(
  h: Harness,
  method: string,
  apiPath: string,
  body?: unknown,
  token = BOOTSTRAP,
): Promise<T> {
  const response = await fetch(`${h.url}${apiPath}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${apiPath}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

/**
 * Seeds the master the way a real node does: enroll with a key, then upload a gzip NDJSON chunk
 * through POST /api/agent/v1/logs.
 */
export async function seedTraffic(h: Harness) {
  const { key } = await api<{ key: string }>(h, "POST", "/api/v1/enrollment-keys", { name: "browser seed" });
  const enrolled = await fetch(`${h.url}/api/agent/v1/enroll`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      enrollmentKey: key,
      instanceId: "browser-test-node-1",
      hostname: "proxy-berlin-1",
      agentVersion: "0.1.0",
      proxyKind: "builtin",
    }),
  });
  const { nodeId, nodeToken } = (await enrolled.json()) as { nodeId: string; nodeToken: string };
  const now = Date.now();
  const hosts = ["www.example.org", "news.example.net", "facebook.com", "tiktok.com", "cdn.example.com"];
  const lines: string[] = [];
  for (let i = 0; i < 400; i++) {
    const host = hosts[i % hosts.length]!;
    const blocked = host === "facebook.com" || host === "tiktok.com";
    lines.push(
      JSON.stringify({
        ts: new Date(now - (i % 120) * 60_000 - 30_000).toISOString(),
        client: `10.0.0.${(i % 7) + 1}`,
        ...(i % 3 === 0 ? { user: "alice" } : {}),
        method: "CONNECT",
        scheme: "connect",
        host,
        port: 443,
        status: blocked ? 403 : 200,
        action: blocked ? "block" : "allow",
        ...(blocked ? { rule: "no-social" } : {}),
        bytesIn: blocked ? 0 : 2000 + i,
        bytesOut: blocked ? 300 : 40_000 + i * 10,
        durationMs: 12,
        requestId: `req-${i}`,
      }),
    );
  }
  const response = await fetch(`${h.url}/api/agent/v1/logs`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${nodeToken}`,
      "Content-Type": "application/x-ndjson",
      "Content-Encoding": "gzip",
      "X-Fleetgate-Chunk": `${now.toString(36)}.1`,
    },
    body: gzipSync(`${lines.join("\n")}\n`),
  });
  if (!response.ok) throw new Error(`log upload: ${response.status} ${await response.text()}`);
  // Accepted is not yet counted: reports see the chunk after its coalescer's flush (~1 s, longer
  // on a loaded machine). The pages under test must find it there.
  const window = `from=${now - 3 * 3_600_000}&to=${now + 3_600_000}&node=${nodeId}`;
  for (let tries = 0; ; tries++) {
    const summary = await api<{ requests: number }>(h, "GET", `/api/v1/reports/summary?${window}`);
    if (summary.requests === lines.length) break;
    if (tries > 300) throw new Error(`seeded ${lines.length} records, reports count ${summary.requests}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { nodeId, records: lines.length };
}
