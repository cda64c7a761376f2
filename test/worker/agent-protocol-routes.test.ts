// The agent protocol, walked from the master's router: every /api/agent/v1 route is one the agent's
// master client calls (agent/master/client.ts MASTER_ROUTES) and every call the client makes has a
// route, so a route added, renamed or dropped on one side fails here, not on a fleet. (That each
// route but enroll refuses a missing or unknown token is node-auth.test.ts's route walk.)
import { describe, expect, it } from "vitest";
import { MASTER_ROUTES } from "../../agent/master/client";
import { PROTOCOL_PREFIX } from "../../protocol/wire";
import { app } from "../../worker/app";

const protocolRoutes = () =>
  [
    ...new Set(
      app.routes
        .filter((r) => r.path.startsWith(`${PROTOCOL_PREFIX}/`) && r.method !== "ALL")
        .map((r) => `${r.method} ${r.path.slice(PROTOCOL_PREFIX.length)}`),
    ),
  ].sort();

describe("agent protocol routes", () => {
  it("the master's agent routes are exactly the ones the agent's master client calls", () => {
    const routes = protocolRoutes();
    expect(routes.length).toBeGreaterThanOrEqual(4);
    expect(routes).toEqual(MASTER_ROUTES.map((r) => `${r.method} ${r.path}`).sort());
  });
});
