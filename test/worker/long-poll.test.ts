import { describe, expect, it } from "vitest";
import type { PolicyBundle } from "../../protocol/wire";
import { call, expectError, json } from "./helpers/api";
import { blockPolicy, enrollNode, publish } from "./helpers/factories";

describe("long-poll distribution", () => {
  it("answers 304 for the current hash with wait=1", async () => {
    const node = await enrollNode();
    const { hash } = await publish(blockPolicy("poll-304.example"), "304");
    const started = Date.now();
    const res = await call("/api/agent/v1/policy?wait=1", {
      token: node.nodeToken,
      headers: { "If-None-Match": `"${hash}"` },
    });
    expect(res.status).toBe(304);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(res.headers.get("ETag")).toBe(`"${hash}"`);
  });

  it("releases a waiting poll within 2 s of a publish", async () => {
    const node = await enrollNode();
    const { hash } = await publish(blockPolicy("poll-before.example"), "before");
    const waiting = call("/api/agent/v1/policy?wait=30", {
      token: node.nodeToken,
      headers: { "If-None-Match": `"${hash}"` },
    });
    await new Promise((r) => setTimeout(r, 300));
    const published = Date.now();
    const next = await publish(blockPolicy("poll-after.example"), "after");
    const res = await waiting;
    const answeredAfter = Date.now() - published;
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as PolicyBundle;
    expect(bundle.version).toBe(next.version);
    expect(answeredAfter).toBeLessThan(2000);
  });

  it("returns the bundle at once when the node's hash is stale, and records a heartbeat", async () => {
    const node = await enrollNode();
    await publish(blockPolicy("stale.example"), "stale");
    const res = await call("/api/agent/v1/policy?wait=30", {
      token: node.nodeToken,
      headers: { "If-None-Match": '"old-hash"', "User-Agent": "fleetgate-agent/9.9.9" },
      address: "192.0.2.44",
    });
    expect(res.status).toBe(200);
    const listed = await json<{
      nodes: { id: string; status: string; lastAddress: string; agentVersion: string }[];
    }>(await call("/api/v1/nodes"), 200);
    expect(listed.nodes.find((n) => n.id === node.nodeId)).toMatchObject({
      status: "online",
      lastAddress: "192.0.2.44",
      agentVersion: "9.9.9",
    });
  });

  it("refuses bad wait values and missing tokens", async () => {
    const node = await enrollNode();
    await expectError(
      await call("/api/agent/v1/policy?wait=56", { token: node.nodeToken }),
      400,
      "VALIDATION_FAILED",
    );
    await expectError(
      await call("/api/agent/v1/policy?wait=-1", { token: node.nodeToken }),
      400,
      "VALIDATION_FAILED",
    );
    await expectError(await call("/api/agent/v1/policy", { token: null }), 401, "NODE_UNKNOWN");
  });
});
