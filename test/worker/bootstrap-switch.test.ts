// The bootstrap token is a setup credential: once an admin exists it can be switched off.
import { describe, expect, it } from "vitest";
import { call, expectError, json } from "./helpers/api";
import { createApiToken } from "./helpers/factories";

describe("bootstrap token switch-off", () => {
  it("cannot be switched off before an admin user exists; then it can, and stays off until turned on", async () => {
    const path = "/api/v1/settings/bootstrap-token";
    expect(await json(await call(path), 200)).toEqual({ enabled: true });
    await expectError(await call(path, { method: "PUT", body: { enabled: false } }), 409, "CONFLICT");

    const admin = await createApiToken("admin");
    await json(
      await call("/api/v1/users", {
        body: { name: "first-admin", role: "admin", password: "a long password" },
      }),
      201,
    );
    const viewer = await createApiToken("viewer");
    await expectError(
      await call(path, { method: "PUT", token: viewer.token, body: { enabled: false } }),
      403,
      "FORBIDDEN",
    );
    expect(await json(await call(path, { method: "PUT", body: { enabled: false } }), 200)).toEqual({
      enabled: false,
    });
    const refused = await expectError(await call("/api/v1/nodes"), 401, "UNAUTHORIZED");
    expect(refused.error.message).toContain("bootstrap");
    // Other tokens keep working and can turn it back on.
    expect((await call("/api/v1/nodes", { token: admin.token })).status).toBe(200);
    await json(await call(path, { method: "PUT", token: admin.token, body: { enabled: true } }), 200);
    expect((await call("/api/v1/nodes")).status).toBe(200);
    const audit = await json<{ entries: { action: string }[] }>(await call("/api/v1/audit"), 200);
    expect(audit.entries.filter((e) => e.action === "settings.bootstrap-token")).toHaveLength(2);
  });
});
