import { describe, expect, it } from "vitest";
import { call, expectError, json } from "./helpers/api";
import { createEnrollmentKey, enrollNode } from "./helpers/factories";

describe("agent allow list", () => {
  it("is off by default, validates CIDRs with their path, and refuses addresses outside it", async () => {
    expect(await json(await call("/api/v1/settings/agent-allowlist"), 200)).toEqual({
      enabled: false,
      cidrs: [],
    });
    const node = await enrollNode({}, "192.0.2.10");

    const bad = await expectError(
      await call("/api/v1/settings/agent-allowlist", {
        method: "PUT",
        body: { enabled: true, cidrs: ["10.0.0.0/8", "300.1.1.1/8"] },
      }),
      400,
      "VALIDATION_FAILED",
    );
    expect(bad.error.details?.[0]?.path).toBe("cidrs[1]");

    await json(
      await call("/api/v1/settings/agent-allowlist", {
        method: "PUT",
        body: { enabled: true, cidrs: ["192.0.2.0/24", "2001:db8::/32"] },
      }),
      200,
    );
    expect(
      (await call("/api/agent/v1/policy", { token: node.nodeToken, address: "192.0.2.10" })).status,
    ).not.toBe(403);
    expect(
      (await call("/api/agent/v1/policy", { token: node.nodeToken, address: "2001:db8::5" })).status,
    ).not.toBe(403);
    await expectError(
      await call("/api/agent/v1/policy", { token: node.nodeToken, address: "198.51.100.1" }),
      403,
      "IP_NOT_ALLOWED",
    );
    await expectError(
      await call("/api/agent/v1/policy", { token: node.nodeToken, address: "2001:db9::1" }),
      403,
      "IP_NOT_ALLOWED",
    );

    const key = await createEnrollmentKey();
    const outside = await call("/api/agent/v1/enroll", {
      token: null,
      address: "198.51.100.1",
      body: {
        enrollmentKey: key.key,
        instanceId: "instance-outside-1",
        hostname: "h",
        agentVersion: "1",
        proxyKind: "builtin",
      },
    });
    await expectError(outside, 403, "IP_NOT_ALLOWED");

    await expectError(
      await call("/api/v1/settings/agent-allowlist", { method: "PUT", body: { enabled: true, cidrs: [] } }),
      400,
      "VALIDATION_FAILED",
    );
    await json(
      await call("/api/v1/settings/agent-allowlist", { method: "PUT", body: { enabled: false, cidrs: [] } }),
      200,
    );
    expect(
      (await call("/api/agent/v1/policy", { token: node.nodeToken, address: "198.51.100.1" })).status,
    ).not.toBe(403);
  });
});
