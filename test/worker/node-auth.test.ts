// The agent protocol's one node-auth middleware (worker/middleware/node-auth.ts): every route but
// enroll, found from the OpenAPI document so a new route cannot be missed, refuses a missing or
// unknown token; uploads use the same identity cache as polls, and a revoke still lands in 5 s.
import { describe, expect, it } from "vitest";
import { observeStatements } from "../../worker/db/client";
import { call, expectError, json } from "./helpers/api";
import { enrollNode } from "./helpers/factories";
import { postChunk, record } from "./helpers/logs";

type Doc = { paths: Record<string, Record<string, unknown>> };

async function agentOperations() {
  const doc = await json<Doc>(await call("/api/openapi.json", { token: null }), 200);
  return Object.entries(doc.paths)
    .filter(([path]) => path.startsWith("/api/agent/v1/") && path !== "/api/agent/v1/enroll")
    .flatMap(([path, item]) => Object.keys(item).map((method) => ({ method: method.toUpperCase(), path })));
}

const nodeReads = (sql: string[]) => sql.filter((s) => /^\s*select/i.test(s) && s.includes('"nodes"'));

describe("node auth on the agent protocol", () => {
  it("refuses every route but enroll without a token and with an unknown one (401 NODE_UNKNOWN)", async () => {
    const ops = await agentOperations();
    expect(ops.map((o) => `${o.method} ${o.path}`).sort()).toEqual(
      expect.arrayContaining([
        "GET /api/agent/v1/policy",
        "POST /api/agent/v1/logs",
        "POST /api/agent/v1/status",
      ]),
    );
    for (const op of ops) {
      const body = op.method === "GET" ? undefined : {};
      for (const token of [null, "fgn_not-a-real-node-token"]) {
        const res = await call(op.path, { method: op.method, token, body });
        await expectError(res, 401, "NODE_UNKNOWN");
      }
    }
  });

  it("authenticates a node's later uploads from the isolate cache, without reading its row", async () => {
    const node = await enrollNode();
    await json(await postChunk(node.nodeToken, "authc.1", [record()]), 200);
    const sql: string[] = [];
    const stop = observeStatements((s) => sql.push(s));
    try {
      await json(await postChunk(node.nodeToken, "authc.2", [record()]), 200);
    } finally {
      stop();
    }
    expect(nodeReads(sql)).toEqual([]);
  });

  it("refuses a revoked node's uploads within 5 s although its identity is cached", async () => {
    const node = await enrollNode();
    await json(await postChunk(node.nodeToken, "revk.1", [record()]), 200);
    const revokedAt = Date.now();
    await json(await call(`/api/v1/nodes/${node.nodeId}`, { method: "DELETE" }), 200);
    for (let seq = 2; ; seq++) {
      const res = await postChunk(node.nodeToken, `revk.${seq}`, [record()]);
      if (res.status === 401) {
        await expectError(res, 401, "NODE_UNKNOWN");
        break;
      }
      expect(res.status).toBe(200);
      expect(Date.now() - revokedAt).toBeLessThan(5000);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(Date.now() - revokedAt).toBeLessThan(5000);
  });
});
