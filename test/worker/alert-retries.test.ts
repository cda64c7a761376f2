// Alert delivery retries and the alerts API (services/alert-delivery.ts, routes/admin/alerts.ts).
// The webhook is the discard port on loopback, where nothing listens: every delivery fails for
// real (connection refused), and the retry schedule is driven by the cron's `now`.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MAX_ATTEMPTS, retryDeliveries } from "../../worker/services/alert-delivery";
import { CONDITION_KINDS, fireAlert, getAlertConfig } from "../../worker/services/alerts";
import { db, page, signedIn, submit } from "./dashboard-helpers";
import { call, expectError, json } from "./helpers/api";
import { createApiToken } from "./helpers/factories";

const HOOK = "http://127.0.0.1:9/hook";
const SECRET = "a-shared-secret-0123456789";
const BASE_MS = 60_000; // ALERT_RETRY_MS's default

interface AlertView {
  id: string;
  kind: string;
  delivery: string;
  deliveryError: string | null;
  attempts: number;
  retryAt: number | null;
  resolvedAt: number | null;
}

const configure = (url: string) =>
  call("/api/v1/settings/alerts", {
    method: "PUT",
    body: { url, secret: SECRET, kinds: [...CONDITION_KINDS], backlogMinutes: 30 },
  });
const alertById = async (id: string) =>
  (await json<{ alerts: AlertView[] }>(await call("/api/v1/alerts?limit=500"), 200)).alerts.find(
    (a) => a.id === id,
  )!;

describe("alert delivery retries", () => {
  it("tries a failed delivery again with a doubling pause, at most an hour, and gives up after the last try", async () => {
    expect(await json(await configure(HOOK), 200)).toEqual({
      url: HOOK,
      kinds: [...CONDITION_KINDS],
      backlogMinutes: 30,
      secretSet: true,
    });
    const t0 = Date.now();
    const fired = await fireAlert({ db: db(), env, kind: "rollout.halted", subject: "rol_retry1" });
    expect(fired).toMatchObject({ fired: true, delivery: "failed" });
    let row = await alertById(fired.id);
    expect(row).toMatchObject({ delivery: "failed", attempts: 1, resolvedAt: null });
    expect(row.retryAt! - t0).toBeGreaterThanOrEqual(BASE_MS);
    expect(row.retryAt! - Date.now()).toBeLessThanOrEqual(BASE_MS);

    const config = await getAlertConfig({ db: db() });
    // Not due yet: nothing is tried.
    expect(await retryDeliveries({ db: db(), config, baseMs: BASE_MS, now: row.retryAt! - 1 })).toEqual({
      tried: 0,
      sent: 0,
    });
    const pauses: number[] = [];
    for (let attempt = 2; attempt <= MAX_ATTEMPTS; attempt++) {
      const due = row.retryAt!;
      expect(await retryDeliveries({ db: db(), config, baseMs: BASE_MS, now: due })).toEqual({
        tried: 1,
        sent: 0,
      });
      row = await alertById(fired.id);
      expect(row.attempts).toBe(attempt);
      if (row.retryAt !== null) pauses.push(row.retryAt - due);
    }
    expect(pauses.map((p) => p / 60_000)).toEqual([2, 4, 8, 16, 32, 60, 60, 60]);
    expect(row).toMatchObject({ delivery: "failed", retryAt: null, attempts: MAX_ATTEMPTS });
    expect(row.deliveryError).toMatch(/^gave up after 10 tries: /);
    // Given up: a later cron tries nothing.
    expect(
      await retryDeliveries({ db: db(), config, baseMs: BASE_MS, now: Date.now() + 86_400_000 }),
    ).toEqual({
      tried: 0,
      sent: 0,
    });
  });

  it("never retries a test alert or a resolved one; resolving is audited, by API and dashboard; a viewer cannot", async () => {
    await json(await configure(HOOK), 200);
    const test = await json<{ id: string; delivery: string }>(
      await call("/api/v1/alerts/test", { method: "POST" }),
      200,
    );
    expect(test.delivery).toBe("failed");
    expect(await alertById(test.id)).toMatchObject({ retryAt: null, resolvedAt: expect.any(Number) });

    const a = await fireAlert({ db: db(), env, kind: "logs.tally_refused", subject: "node_retry2" });
    const b = await fireAlert({ db: db(), env, kind: "rollout.halted", subject: "rol_retry3" });
    expect((await alertById(a.id)).retryAt).not.toBeNull();
    const open = await json<{ alerts: AlertView[] }>(await call("/api/v1/alerts?open=true"), 200);
    expect(open.alerts.map((x) => x.id)).toEqual(expect.arrayContaining([a.id, b.id]));
    expect(open.alerts.every((x) => x.resolvedAt === null)).toBe(true);

    const viewer = await createApiToken("viewer");
    expect((await call("/api/v1/alerts", { token: viewer.token })).status).toBe(200);
    await expectError(
      await call("/api/v1/alerts/resolve", { token: viewer.token, body: { ids: [a.id] } }),
      403,
      "FORBIDDEN",
    );
    expect(await json(await call("/api/v1/alerts/resolve", { body: { ids: [a.id] } }), 200)).toEqual({
      resolved: 1,
    });
    expect(await json(await call("/api/v1/alerts/resolve", { body: { ids: [a.id] } }), 200)).toEqual({
      resolved: 0,
    });
    expect(await alertById(a.id)).toMatchObject({ retryAt: null, resolvedAt: expect.any(Number) });

    // The dashboard's Resolve button on Settings → Alerts.
    const s = await signedIn();
    expect(await (await page("/settings/alerts", { cookie: s.cookie })).text()).toContain(`resolve-${b.id}`);
    const resolved = await submit(`/settings/alerts/${b.id}/resolve`, s);
    expect(await resolved.text()).toContain("Alert resolved");
    expect((await alertById(b.id)).resolvedAt).not.toBeNull();

    const config = await getAlertConfig({ db: db() });
    expect(
      await retryDeliveries({ db: db(), config, baseMs: BASE_MS, now: Date.now() + 86_400_000 }),
    ).toEqual({
      tried: 0,
      sent: 0,
    });
    const audit = await json<{ entries: { action: string }[] }>(
      await call("/api/v1/audit?action=alerts.resolve"),
      200,
    );
    expect(audit.entries).toHaveLength(2);
  });

  it("refuses bad input naming what was wrong", async () => {
    const bad = await expectError(
      await call("/api/v1/settings/alerts", {
        method: "PUT",
        body: { url: HOOK, secret: SECRET, kinds: ["nope"], backlogMinutes: 30 },
      }),
      400,
      "VALIDATION_FAILED",
    );
    expect(JSON.stringify(bad)).toContain("kinds");
    await expectError(await configure("ftp://example.com/x"), 400, "VALIDATION_FAILED");
    await expectError(
      await call("/api/v1/alerts/resolve", { body: { ids: ["x"] } }),
      400,
      "VALIDATION_FAILED",
    );
    await expectError(await call("/api/v1/alerts?open=maybe"), 400, "VALIDATION_FAILED");
  });
});
