import { describe, expect, it } from "vitest";
import { canWrite, READ_ONLY_ROUTES } from "../../worker/middleware/can-write";
import { call, expectError, json } from "./helpers/api";
import { createApiToken } from "./helpers/factories";

type Doc = { paths: Record<string, Record<string, unknown>> };

async function adminOperations() {
  const doc = await json<Doc>(await call("/api/openapi.json", { token: null }), 200);
  const ops: { method: string; path: string }[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    if (!path.startsWith("/api/v1/")) continue;
    for (const method of Object.keys(item)) {
      ops.push({ method: method.toUpperCase(), path: path.replace(/\{[^}]+\}/g, "x_1") });
    }
  }
  return ops;
}

describe("every admin route", () => {
  it("refuses a request without a token (401) and with an unknown token (401)", async () => {
    const ops = await adminOperations();
    expect(ops.length).toBeGreaterThanOrEqual(15);
    for (const op of ops) {
      const body = op.method === "GET" ? undefined : {};
      const missing = await call(op.path, { method: op.method, token: null, body });
      await expectError(missing, 401, "UNAUTHORIZED");
      const wrong = await call(op.path, { method: op.method, token: "fgt_not-a-real-token", body });
      await expectError(wrong, 401, "UNAUTHORIZED");
    }
  });

  it("refuses a viewer's write (403) but lets a viewer read", async () => {
    const viewer = await createApiToken("viewer");
    for (const op of await adminOperations()) {
      const res = await call(op.path, {
        method: op.method,
        token: viewer.token,
        body: op.method === "GET" ? undefined : {},
      });
      if (op.method === "GET" || (op.method === "POST" && READ_ONLY_ROUTES.has(op.path))) {
        expect([200, 400, 404, 422], `${op.method} ${op.path}`).toContain(res.status);
      } else {
        await expectError(res, 403, "FORBIDDEN");
      }
    }
  });
});

describe("canWrite", () => {
  it("lets an admin send anything and a viewer only reads and the read-only POSTs", () => {
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      expect(canWrite("admin", method, "/api/v1/policy")).toBe(true);
      expect(canWrite("viewer", method, "/api/v1/policy")).toBe(false);
    }
    expect(canWrite("viewer", "GET", "/api/v1/policy")).toBe(true);
    expect(canWrite("viewer", "HEAD", "/overview")).toBe(true);
    expect(READ_ONLY_ROUTES.size).toBeGreaterThan(0);
    for (const path of READ_ONLY_ROUTES) {
      expect(canWrite("viewer", "POST", path)).toBe(true);
      // Read-only means the POST only: another method on the same path is a write.
      expect(canWrite("viewer", "PUT", path)).toBe(false);
      expect(canWrite("viewer", "DELETE", path)).toBe(false);
    }
  });
});

describe("API tokens", () => {
  it("shows a token once, stores only its hash, and a revoked token stops working", async () => {
    const created = await createApiToken("admin");
    expect(created.token).toMatch(/^fgt_/);
    const listed = await json<{ tokens: Record<string, unknown>[] }>(await call("/api/v1/tokens"), 200);
    const row = listed.tokens.find((t) => t.id === created.id)!;
    expect(row).toBeDefined();
    expect(JSON.stringify(listed)).not.toContain(created.token);
    expect(row.tokenHash).toBeUndefined();

    await json(await call("/api/v1/nodes", { token: created.token }), 200);
    await json(await call(`/api/v1/tokens/${created.id}`, { method: "DELETE" }), 200);
    await expectError(await call("/api/v1/nodes", { token: created.token }), 401, "UNAUTHORIZED");
  });

  it("refuses an expired token", async () => {
    const res = await call("/api/v1/tokens", {
      body: { name: "short", role: "admin", expiresAt: Date.now() - 1000 },
    });
    await expectError(res, 400, "VALIDATION_FAILED");
  });

  it("writes every change to the audit log with the actor", async () => {
    const created = await createApiToken("viewer");
    const audit = await json<{ entries: { action: string; target: string; actor: string }[] }>(
      await call("/api/v1/audit"),
      200,
    );
    const entry = audit.entries.find((e) => e.target === created.id);
    expect(entry).toMatchObject({ action: "api-token.create", actor: "bootstrap" });
  });

  it("rejects unknown fields and wrong types with the JSON path", async () => {
    const extra = await expectError(
      await call("/api/v1/tokens", { body: { name: "x", role: "admin", admin: true } }),
      400,
      "VALIDATION_FAILED",
    );
    expect(extra.error.message).toContain("json");
    const wrongRole = await expectError(
      await call("/api/v1/tokens", { body: { name: "x", role: "root" } }),
      400,
      "VALIDATION_FAILED",
    );
    expect(wrongRole.error.details?.[0]?.path).toBe("json.role");
  });

  it("answers malformed JSON, a wrong content type and an oversize body with 4xx", async () => {
    await expectError(
      await call("/api/v1/tokens", {
        method: "POST",
        rawBody: "{not json",
        headers: { "Content-Type": "application/json" },
      }),
      400,
      "BAD_REQUEST",
    );
    const wrongType = await call("/api/v1/tokens", {
      method: "POST",
      rawBody: "name=x",
      headers: { "Content-Type": "text/plain" },
    });
    expect(wrongType.status).toBeGreaterThanOrEqual(400);
    expect(wrongType.status).toBeLessThan(500);
    await expectError(
      await call("/api/v1/tokens", { body: { name: "x".repeat(300 * 1024), role: "admin" } }),
      413,
      "PAYLOAD_TOO_LARGE",
    );
  });
});
