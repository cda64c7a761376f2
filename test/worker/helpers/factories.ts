import type { EnrollResponse } from "../../../protocol/wire";
import { call, json } from "./api";

export const MINIMAL_POLICY = { rules: [], defaultAction: "allow" };

export function blockPolicy(domain: string, id = "block-it") {
  return {
    rules: [{ id, action: "block", match: { domains: [domain] }, message: `${domain} is blocked` }],
    defaultAction: "allow",
  };
}

export async function createEnrollmentKey(overrides: Record<string, unknown> = {}) {
  return json<{ id: string; key: string }>(
    await call("/api/v1/enrollment-keys", { body: { name: "test key", ...overrides } }),
    201,
  );
}

let instanceCounter = 0;

/** Enrolls through the agent API; `nodeToken` proves identity when re-enrolling an instance. */
export async function enrollNode(
  overrides: Record<string, unknown> = {},
  address?: string,
  nodeToken?: string,
) {
  const key = overrides.enrollmentKey ?? (await createEnrollmentKey()).key;
  const body = {
    enrollmentKey: key,
    instanceId: `instance-${Date.now()}-${instanceCounter++}`,
    hostname: "proxy-1.branch.example",
    agentVersion: "0.1.0",
    proxyKind: "builtin",
    ...overrides,
  };
  const enrolled = await json<EnrollResponse>(
    await call("/api/agent/v1/enroll", { token: nodeToken ?? null, body, ...(address ? { address } : {}) }),
    201,
  );
  return { ...enrolled, instanceId: body.instanceId as string };
}

export async function publish(policy: unknown, message = "test publish", token?: string) {
  return json<{ version: number; hash: string; unchanged: boolean }>(
    await call("/api/v1/policy/versions", { body: { policy, message }, ...(token ? { token } : {}) }),
    201,
  );
}

export async function createApiToken(role: "admin" | "viewer") {
  return json<{ id: string; token: string }>(
    await call("/api/v1/tokens", { body: { name: `${role} token`, role } }),
    201,
  );
}
