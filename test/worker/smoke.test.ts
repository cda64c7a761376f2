import { describe, expect, it } from "vitest";
import { call, expectError, json } from "./helpers/api";

describe("master basics", () => {
  it("answers /healthz", async () => {
    expect(await json(await call("/healthz", { token: null }), 200)).toEqual({ ok: true });
  });

  it("serves an OpenAPI document covering the admin and agent APIs", async () => {
    const doc = await json<{ openapi: string; paths: Record<string, unknown> }>(
      await call("/api/openapi.json", { token: null }),
      200,
    );
    expect(doc.openapi).toBe("3.1.0");
    for (const path of [
      "/api/agent/v1/enroll",
      "/api/agent/v1/policy",
      "/api/agent/v1/status",
      "/api/v1/nodes",
      "/api/v1/policy/versions",
    ]) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
  });

  it("answers unknown routes with the uniform 404 body", async () => {
    await expectError(await call("/api/v1/nope"), 404, "NOT_FOUND");
  });

  it("sets security headers", async () => {
    const res = await call("/healthz", { token: null });
    expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(res.headers.get("X-Request-Id")).toMatch(/[0-9a-f-]{36}/);
  });
});
