import { describe, expect, it } from "vitest";
import { call, expectError, json } from "./helpers/api";

type User = { id: string; name: string; role: string; hasPassword: boolean; disabledAt: number | null };

describe("/api/v1/users", () => {
  it("creates, lists and updates dashboard users without ever returning a password hash", async () => {
    const created = await json<User>(
      await call("/api/v1/users", {
        body: { name: "carol", role: "viewer", password: "long enough password" },
      }),
      201,
    );
    expect(created).toMatchObject({ name: "carol", role: "viewer", hasPassword: true });
    const listed = await json<{ users: User[] }>(await call("/api/v1/users"), 200);
    expect(listed.users.map((u) => u.name)).toContain("carol");
    expect(JSON.stringify(listed)).not.toContain("pbkdf2");

    const promoted = await json<User>(
      await call(`/api/v1/users/${created.id}`, { method: "PATCH", body: { role: "admin" } }),
      200,
    );
    expect(promoted.role).toBe("admin");
    // A second admin, so carol is not the last active one.
    await call("/api/v1/users", {
      body: { name: "frank", role: "admin", password: "frank's long password" },
    });
    const disabled = await json<User>(
      await call(`/api/v1/users/${created.id}`, { method: "PATCH", body: { disabled: true } }),
      200,
    );
    expect(disabled.disabledAt).not.toBeNull();
    const audit = await json<{ entries: { action: string; target: string }[] }>(
      await call("/api/v1/audit"),
      200,
    );
    expect(audit.entries.filter((e) => e.target === created.id).map((e) => e.action)).toEqual([
      "user.update",
      "user.update",
      "user.create",
    ]);
  });

  it("keeps the last active admin and names what was wrong", async () => {
    const dana = await json<User>(
      await call("/api/v1/users", {
        body: { name: "dana", role: "admin", password: "another long password" },
      }),
      201,
    );
    // Demote every other active admin (allowed while another remains); then dana is the last one.
    const { users } = await json<{ users: User[] }>(await call("/api/v1/users"), 200);
    for (const other of users.filter((u) => u.role === "admin" && !u.disabledAt && u.id !== dana.id)) {
      await json(await call(`/api/v1/users/${other.id}`, { method: "PATCH", body: { role: "viewer" } }), 200);
    }
    for (const change of [{ role: "viewer" }, { disabled: true }]) {
      await expectError(
        await call(`/api/v1/users/${dana.id}`, { method: "PATCH", body: change }),
        409,
        "CONFLICT",
      );
    }
    const only = dana;
    await expectError(
      await call("/api/v1/users", { body: { name: "dana", role: "admin" } }),
      409,
      "CONFLICT",
    );
    const short = await expectError(
      await call("/api/v1/users", { body: { name: "erin", role: "viewer", password: "short" } }),
      400,
      "VALIDATION_FAILED",
    );
    expect(short.error.details?.[0]?.path).toBe("json.password");
    await expectError(
      await call(`/api/v1/users/${only.id}`, { method: "PATCH", body: {} }),
      400,
      "VALIDATION_FAILED",
    );
    await expectError(
      await call("/api/v1/users/usr_doesnotexist0000", { method: "PATCH", body: { disabled: true } }),
      404,
      "NOT_FOUND",
    );
  });
});
