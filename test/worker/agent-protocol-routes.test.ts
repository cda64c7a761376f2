// The agent protocol, walked from the master's router: every /api/agent/v1 route is one the agent's
// master client calls (agent/master/client.ts MASTER_ROUTES) and every call the client makes has a
// route — so a route added, renamed or dropped on one side fails here, not on a fleet. Each route but
// enroll refuses a call without a node token with the one error body.
import { describe, expect, it } from "vitest";
import { MASTER_ROUTES } from "../../agent/master/client";
import { PROTOCOL_PREFIX, type StatusReport } from "../../protocol/wire";
import { app } from "../../worker/app";
import { call, json } from "./helpers/api";

const REPORT: StatusReport = {
  appliedVersion: null,
  appliedHash: null,
  state: "applied",
  proxy: { kind: "builtin", listen: "127.0.0.1:3128", version: "test" },
  spool: { pendingChunks: 0, pendingBytes: 0, oldestPendingAt: null, droppedRecords: 0 },
  agentVersion: "0.1.0",
  uptimeSeconds: 1,
};

const protocolRoutes = () =>
  [
    ...new Set(
      app.routes
        .filter((r) => r.path.startsWith(`${PROTOCOL_PREFIX}/`) && r.method !== "ALL")
        .map((r) => `${r.method} ${r.path.slice(PROTOCOL_PREFIX.length)}`),
    ),
  ].sort();

describe("agent protocol routes", () => {
  it("the master's agent routes are exactly the ones the agent's client calls", () => {
    const routes = protocolRoutes();
    expect(routes.length).toBeGreaterThanOrEqual(4);
    expect(routes).toEqual(MASTER_ROUTES.map((r) => `${r.method} ${r.path}`).sort());
  });

  it("every agent route but enroll refuses a call without a node token (401, one error body)", async () => {
    for (const route of protocolRoutes()) {
      const [method, path] = route.split(" ") as [string, string];
      if (path === "/enroll") continue;
      for (const token of [null, "fgn_not-a-real-token"]) {
        // Otherwise well-formed, as the agent sends it: only the token is missing or wrong.
        const response = await call(`${PROTOCOL_PREFIX}${path}`, {
          method,
          token,
          ...(path === "/logs"
            ? {
                rawBody: new Uint8Array(0),
                headers: { "x-fleetgate-chunk": "lz3k9a.42", "content-type": "application/x-ndjson" },
              }
            : method === "POST"
              ? { body: path === "/status" ? REPORT : {} }
              : {}),
        });
        const body = await json<{ error: { code: string; requestId: string } }>(response, 401);
        expect(body.error.requestId, `${route} token=${token}`).toBeTruthy();
      }
    }
  });
});
