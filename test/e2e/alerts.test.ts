// Alert delivery against the real master and a real webhook receiver on loopback: the receiver is
// down for the first delivery (503), the master's cron tries again with the same signed payload,
// and the alert is then sent. ALERT_RETRY_MS is short here so the retry is due within a second.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALERT_SIGNATURE_HEADER, ALERT_TIMESTAMP_HEADER, verifyAlert } from "../../protocol/alerts";
import { type RunningMaster, startMaster } from "../helpers/master.mjs";
import { statusReport } from "../helpers/status-report";
import { BOOTSTRAP_TOKEN, SIGNING_SEED, waitFor } from "./harness";

const SECRET = "e2e-alert-secret-0123456789";

interface Delivery {
  status: number;
  body: string;
  timestamp: number;
  signature: string;
}

let master: RunningMaster;
let receiver: http.Server;
let hookUrl: string;
const deliveries: Delivery[] = [];

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (part) => {
      body += part;
    });
    req.on("end", () => {
      // Down for the first delivery, up after.
      const status = deliveries.length === 0 ? 503 : 204;
      deliveries.push({
        status,
        body,
        timestamp: Number(req.headers[ALERT_TIMESTAMP_HEADER.toLowerCase()]),
        signature: String(req.headers[ALERT_SIGNATURE_HEADER.toLowerCase()]),
      });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  master = await startMaster({
    bootstrapToken: BOOTSTRAP_TOKEN,
    signingSeed: SIGNING_SEED,
    vars: { ALERT_RETRY_MS: "300" },
    testScheduled: true,
  });
});

afterAll(async () => {
  await master?.stop();
  await new Promise((resolve) => receiver?.close(resolve));
});

async function api<T = Record<string, unknown>>(method: string, route: string, body?: unknown): Promise<T> {
  const response = await fetch(`${master.url}${route}`, {
    method,
    headers: { Authorization: `Bearer ${BOOTSTRAP_TOKEN}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${route} → ${response.status}: ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

const cron = async () => {
  const response = await fetch(`${master.url}/__scheduled?cron=${encodeURIComponent("* * * * *")}`);
  await response.arrayBuffer();
  expect(response.ok).toBe(true);
};

describe("alert delivery", () => {
  it("tries a delivery the webhook refused again from the cron, with the same signed payload, until it is sent", async () => {
    await api("PUT", "/api/v1/settings/alerts", {
      url: hookUrl,
      secret: SECRET,
      kinds: ["records.dropped"],
      backlogMinutes: 30,
    });
    // A node that reports dropped records: the condition the cron's check alerts on.
    const { key } = await api<{ key: string }>("POST", "/api/v1/enrollment-keys", { name: "alerts e2e" });
    const node = await api<{ nodeId: string; nodeToken: string }>("POST", "/api/agent/v1/enroll", {
      enrollmentKey: key,
      instanceId: "alerts-e2e-node",
      hostname: "proxy-alerts-1",
      agentVersion: "0.1.0",
      proxyKind: "builtin",
    });
    const status = await fetch(`${master.url}/api/agent/v1/status`, {
      method: "POST",
      headers: { Authorization: `Bearer ${node.nodeToken}`, "Content-Type": "application/json" },
      body: JSON.stringify(
        statusReport({
          appliedVersion: null,
          appliedHash: null,
          spool: { pendingChunks: 0, pendingBytes: 0, oldestPendingAt: null, droppedRecords: 7 },
        }),
      ),
    });
    expect(status.status).toBe(204);

    await cron();
    await waitFor("the first delivery", async () => deliveries.length >= 1);
    type Row = { id: string; kind: string; delivery: string; attempts: number; retryAt: number | null };
    const ours = async () =>
      (await api<{ alerts: Row[] }>("GET", "/api/v1/alerts?open=true")).alerts.find(
        (a) => a.kind === "records.dropped",
      );
    expect(await ours()).toMatchObject({ delivery: "failed", attempts: 1, retryAt: expect.any(Number) });

    // The cron runs every minute in production; here it is run until the retry is due and sent.
    const sent = await waitFor(
      "the retried delivery",
      async () => {
        await cron();
        const row = await ours();
        return row?.delivery === "sent" ? row : null;
      },
      20_000,
      250,
    );
    expect(sent).toMatchObject({ attempts: 2, retryAt: null });
    expect(deliveries.map((d) => d.status)).toEqual([503, 204]);
    const [first, second] = deliveries as [Delivery, Delivery];
    expect(JSON.parse(second.body)).toEqual(JSON.parse(first.body));
    expect(JSON.parse(first.body)).toMatchObject({
      id: sent.id,
      kind: "records.dropped",
      subject: node.nodeId,
    });
    for (const d of deliveries)
      expect(await verifyAlert(SECRET, d.timestamp, d.body, d.signature)).toBe(true);
    // Sent: later crons neither send it again nor open a second alert for the same node.
    await cron();
    await cron();
    expect(deliveries).toHaveLength(2);
  });
});
