import { env } from "cloudflare:test";
import { inArray } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { getDb, TooManyParametersError } from "../../worker/db/client";
import { nodes } from "../../worker/db/schema";
import { call, json } from "./helpers/api";
import { enrollNode } from "./helpers/factories";
import { uploadChunk } from "./helpers/logs";

type Doc = { paths: Record<string, Record<string, unknown>> };

const JUNK: (string | undefined)[] = [
  undefined,
  "",
  "null",
  "[]",
  '"text"',
  "42",
  "{",
  '{"a":',
  "{}",
  '{"policy":null,"message":123}',
  `{"name":"${"\u0000".repeat(10)}","role":"admin"}`,
  JSON.stringify({ request: { client: "::1", url: "http://[::1]:99999/" } }),
  JSON.stringify({ enrollmentKey: 1, instanceId: [], hostname: {}, agentVersion: null, proxyKind: true }),
];

describe("no 500 for anything a client can send", () => {
  it("answers junk on every documented route with a 2xx/3xx/4xx and the uniform error body", async () => {
    const node = await enrollNode();
    const doc = await json<Doc>(await call("/api/openapi.json", { token: null }), 200);
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of Object.keys(item)) {
        for (const body of JUNK) {
          const concrete = path.replace("{version}", "1").replace("{id}", "node_abc12345");
          const token = path.startsWith("/api/agent/") ? node.nodeToken : undefined;
          const res = await call(concrete.replace("/policy?", "/policy?wait=0&"), {
            method: method.toUpperCase(),
            rawBody: method === "get" ? undefined : body,
            headers: { "Content-Type": "application/json" },
            ...(token ? { token } : {}),
          });
          expect(res.status, `${method} ${path} ${body}`).toBeLessThan(500);
          if (res.status >= 400) {
            const parsed = (await res.json()) as { error: { code: string; requestId: string } };
            expect(parsed.error.code, `${method} ${path}`).toMatch(/^[A-Z_]+$/);
          } else {
            await res.arrayBuffer();
          }
        }
      }
    }
  });
});

describe("D1 bound-parameter guard", () => {
  it("refuses a statement over 100 bound parameters here, as production D1 would", async () => {
    const db = getDb(env.DB);
    const ids = (n: number) => Array.from({ length: n }, (_, i) => `node_${String(i).padStart(8, "0")}`);
    await expect(
      db
        .select()
        .from(nodes)
        .where(inArray(nodes.id, ids(100))),
    ).resolves.toEqual([]);
    // drizzle wraps the driver's error ("Failed query: …") and keeps ours as the cause.
    const error = await db
      .select()
      .from(nodes)
      .where(inArray(nodes.id, ids(101)))
      .then(
        () => null,
        (e: Error) => e,
      );
    expect(error?.cause).toBeInstanceOf(TooManyParametersError);
    expect(String((error?.cause as Error | undefined)?.message)).toMatch(
      /binds 101 parameters; D1 allows 100/,
    );
    expect(() => db.$client.prepare("SELECT 1").bind(...ids(101))).toThrow(TooManyParametersError);
  });

  it("lets a chunk of thousands of rollup rows through as one JSON parameter", async () => {
    const node = await enrollNode();
    const records = Array.from({ length: 3000 }, (_, i) => ({
      ts: "2026-11-20T10:15:30.000Z",
      client: `10.0.${i % 250}.1`,
      method: "GET",
      scheme: "http",
      host: `h${i}.example`,
      port: 80,
      status: 200,
      action: "allow",
      bytesIn: 1,
      bytesOut: 1,
      durationMs: 1,
      requestId: `r${i}`,
    }));
    expect(await json(await uploadChunk(node.nodeToken, "guard.1", records), 200)).toEqual({
      accepted: 3000,
      duplicate: false,
    });
  });
});
