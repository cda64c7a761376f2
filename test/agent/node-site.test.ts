import { describe, expect, it } from "vitest";
import { NodeSite } from "../../agent/node-site";
import type { ActivePolicy, ProxyDriver } from "../../agent/proxy/types";
import type { SiteAssertion } from "../../protocol/site";

describe("NodeSite.wrapDriver", () => {
  it("sets the node's site on each policy before the driver takes it, and keeps the driver's gauges", async () => {
    const applied: (string | null)[] = [];
    const driver: ProxyDriver = {
      kind: "builtin",
      start: async () => {},
      stop: async () => {},
      listenAddress: () => "127.0.0.1:3128",
      version: () => "test",
      activity: () => ({ connections: 3, tunnels: 1 }),
      applyPolicy: async () => {
        applied.push(site);
      },
    };
    let site: string | null = null;
    const policy = { compiled: { setSite: (s: string | null) => (site = s) } } as unknown as ActivePolicy;
    const nodeSite = new NodeSite({ site: "alpha" } as SiteAssertion, {
      nodeId: "node_a",
      stateDir: "/nonexistent",
      trusted: async () => [],
      events: { emit: () => {} },
    });
    const wrapped = nodeSite.wrapDriver(driver);
    await wrapped.applyPolicy(policy);
    expect(applied).toEqual(["alpha"]);
    expect(wrapped.activity?.()).toEqual({ connections: 3, tunnels: 1 });
  });
});
