// The agent's one master client: every call carries the same user agent and node token, and an
// answer becomes a result the same way whoever called (sync, uploads, enroll).
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { MasterClient } from "../../agent/master/client";
import { uploadOutcome } from "../../agent/spool/upload-outcome";
import { agentUserAgent } from "../../protocol/wire";
import { errorBody, FakeMaster, MASTER } from "./fakes/master";
import { makeBundle, signingKey } from "./fakes/seeds";

const report = {
  appliedVersion: null,
  appliedHash: null,
  state: "applied" as const,
  proxy: { kind: "builtin" as const, listen: "127.0.0.1:3128", version: "t" },
  spool: { pendingChunks: 0, pendingBytes: 0, oldestPendingAt: null, droppedRecords: 0 },
  agentVersion: "1.2.3",
  uptimeSeconds: 1,
};

function client(master: FakeMaster, nodeToken: string | null = "fgn_token") {
  return new MasterClient({
    fetch: master.fetch,
    masterUrl: `${MASTER}/`,
    nodeToken,
    agentVersion: "1.2.3",
    now: () => 0,
  });
}

describe("master client", () => {
  it("sends one user agent and the node token on poll, status, logs and re-enroll; none on a first enroll", async () => {
    const master = new FakeMaster();
    master.current = await makeBundle(await signingKey(), 1, { rules: [], defaultAction: "allow" });
    const c = client(master);
    expect(await c.pollPolicy({ etag: null, waitSeconds: 0 })).toMatchObject({
      ok: true,
      kind: "bundle",
      etag: master.current.hash,
    });
    expect(await c.pollPolicy({ etag: master.current.hash, waitSeconds: 0 })).toEqual({
      ok: true,
      kind: "not-modified",
    });
    expect(await c.postStatus({ report })).toEqual({ ok: true });
    const body = gzipSync(`${JSON.stringify({ requestId: "r1" })}\n`);
    expect(await c.uploadChunk({ chunkId: "e1.1", body })).toEqual({
      ok: true,
      accepted: 1,
      duplicate: false,
      takesTally: false,
    });
    const enrollRequest = {
      enrollmentKey: "k",
      instanceId: "instance-1",
      hostname: "h",
      agentVersion: "1.2.3",
      proxyKind: "builtin" as const,
    };
    expect(await c.enroll({ request: enrollRequest })).toMatchObject({
      ok: true,
      enrollment: { nodeId: "node_test1" },
    });
    expect(await client(master, null).enroll({ request: enrollRequest })).toMatchObject({ ok: true });

    expect(master.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      "GET /api/agent/v1/policy?wait=0",
      "GET /api/agent/v1/policy?wait=0",
      "POST /api/agent/v1/status",
      "POST /api/agent/v1/logs",
      "POST /api/agent/v1/enroll",
      "POST /api/agent/v1/enroll",
    ]);
    for (const r of master.requests) expect(r.headers["user-agent"]).toBe(agentUserAgent("1.2.3"));
    expect(master.requests.slice(0, 5).map((r) => r.headers.authorization)).toEqual(
      Array(5).fill("Bearer fgn_token"),
    );
    expect(master.requests[5]!.headers.authorization).toBeUndefined();
    expect(master.requests[3]!.headers["x-fleetgate-chunk"]).toBe("e1.1");
  });

  it("reads the error body, Retry-After and network failures the same way for every call", async () => {
    const master = new FakeMaster();
    const c = client(master);
    master.route = (req) =>
      req.url.includes("/status")
        ? { status: 429, body: errorBody("RATE_LIMITED", "slow down"), headers: { "retry-after": "7" } }
        : req.url.includes("/logs")
          ? { status: 502, body: "<html>bad gateway</html>" }
          : undefined;
    expect(await c.postStatus({ report })).toEqual({
      ok: false,
      status: 429,
      code: "RATE_LIMITED",
      message: "slow down",
      retryAfterMs: 7_000,
    });
    const upload = await c.uploadChunk({ chunkId: "e1.2", body: gzipSync("") });
    expect(upload).toEqual({
      ok: false,
      status: 502,
      code: "HTTP_502",
      message: "master answered HTTP 502",
      retryAfterMs: null,
    });
    const down = new MasterClient({
      fetch: async () => {
        throw new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } });
      },
      masterUrl: MASTER,
      nodeToken: "t",
    });
    expect(await down.pollPolicy({ etag: null, waitSeconds: 0 })).toEqual({
      ok: false,
      status: 0,
      code: "UNREACHABLE",
      message: "fetch failed (ECONNREFUSED)",
      retryAfterMs: null,
    });
  });

  it("the spool reads an upload result as before: ack, split, quarantine, throttle, keep on 401/403, retry", () => {
    const fail = (status: number, code = `C${status}`, retryAfterMs: number | null = null) =>
      uploadOutcome({ ok: false, status, code, message: "m", retryAfterMs });
    expect(uploadOutcome({ ok: true, accepted: 3, duplicate: false, takesTally: false })).toEqual({
      kind: "acked",
      accepted: 3,
      duplicate: false,
      takesTally: false,
    });
    expect(fail(413).kind).toBe("too-large");
    expect(fail(422)).toEqual({ kind: "refused", status: 422, code: "C422", message: "m" });
    expect(fail(429, "RATE_LIMITED", 30_000)).toEqual({
      kind: "throttled",
      status: 429,
      retryAfterMs: 30_000,
    });
    expect(fail(503).kind).toBe("throttled");
    expect(fail(401).kind).toBe("unauthorized");
    expect(fail(403).kind).toBe("unauthorized");
    for (const status of [408, 425, 500, 502]) expect(fail(status).kind).toBe("failed");
    expect(fail(0, "UNREACHABLE")).toEqual({ kind: "failed", status: 0, message: "m" });
    expect(fail(200, "BAD_ANSWER")).toEqual({ kind: "failed", status: 200, message: "m" });
  });
});
