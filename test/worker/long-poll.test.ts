import { describe, expect, it } from "vitest";
import { bundleTag, type PolicyBundle } from "../../protocol/wire";
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
    expect(res.headers.get("ETag")).toMatch(new RegExp(`^"\\d+\\.\\d+\\.${hash}"$`));
  });

  it("names a bundle by (generation, version, hash): a new series of unchanged content releases a node holding it", async () => {
    const node = await enrollNode();
    const first = await publish(blockPolicy("series-same.example"), "series base");
    const tag = bundleTag(first);
    // The node's own tag holds the poll; so does the bare hash older agents send.
    const held = await call("/api/agent/v1/policy?wait=1", {
      token: node.nodeToken,
      headers: { "If-None-Match": `"${tag}"` },
    });
    expect(held.status).toBe(304);
    expect(held.headers.get("ETag")).toBe(`"${tag}"`);
    const legacy = await call("/api/agent/v1/policy?wait=0", {
      token: node.nodeToken,
      headers: { "If-None-Match": `"${first.hash}"` },
    });
    expect(legacy.status).toBe(304);

    const waiting = call("/api/agent/v1/policy?wait=30", {
      token: node.nodeToken,
      headers: { "If-None-Match": `"${tag}"` },
    });
    await new Promise((r) => setTimeout(r, 300));
    const series = await json<{ version: number; hash: string; generation: number }>(
      await call("/api/v1/policy/series", { body: { message: "rotation step" } }),
      201,
    );
    expect(series.hash).toBe(first.hash);
    const res = await waiting;
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as PolicyBundle;
    expect(bundle).toMatchObject({
      version: series.version,
      hash: first.hash,
      generation: series.generation,
    });
    expect(res.headers.get("ETag")).toBe(`"${bundleTag(series)}"`);
    expect(bundleTag(series)).not.toBe(tag);

    // Holding the new series' tag parks again.
    const after = await call("/api/agent/v1/policy?wait=0", {
      token: node.nodeToken,
      headers: { "If-None-Match": `"${bundleTag(series)}"` },
    });
    expect(after.status).toBe(304);
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
