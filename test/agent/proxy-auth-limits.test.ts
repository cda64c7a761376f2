// Cheap refusals first (issue 10 item 4): the access list is judged before any password hash, a
// client address may start only so many PBKDF2 derives per minute (auth-limiter.ts), and failed
// credentials are remembered briefly (protocol/policy/credentials.ts), so repeating them costs nothing.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUTH_ATTEMPTS_PER_WINDOW } from "../../agent/proxy/builtin/auth-limiter";
import { CredentialChecker, FAILURE_CACHE_MS } from "../../protocol/policy/credentials";
import { hashPassword } from "../../protocol/policy/password";
import type { CredentialGate } from "../../protocol/policy/types";
import {
  type Harness,
  makePolicy,
  type Origin,
  passwordHashFor,
  RawClient,
  startHarness,
  startOrigin,
} from "./proxy-helpers";

let origin: Origin;
let proxy: Harness;
let authPolicy: Record<string, unknown>;

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

beforeAll(async () => {
  origin = await startOrigin((req, res) => res.end(`hello ${req.url}`));
  authPolicy = makePolicy({
    auth: {
      required: true,
      users: [{ name: "alice", passwordHash: await passwordHashFor("right"), groups: [] }],
    },
  });
  proxy = await startHarness(authPolicy);
});

afterAll(async () => {
  proxy?.kill();
  await origin?.close();
});

async function attempt(client: RawClient, password: string, path = "/") {
  client.send(
    `GET http://127.0.0.1:${origin.port}${path} HTTP/1.1\r\nHost: x\r\nProxy-Authorization: ${basic("alice", password)}\r\n\r\n`,
  );
  return client.readResponse();
}

describe("credential checks", () => {
  it("remembers a failure for a while: the same wrong password needs no second derive", async () => {
    let now = 1_000_000;
    const checker = new CredentialChecker(
      [{ name: "bob", passwordHash: await hashPassword("pw", 1000), groups: [] }],
      () => now,
    );
    let derives = 0;
    const gate: CredentialGate = {
      allowDerive: () => {
        derives++;
        return true;
      },
      derived: () => {},
    };
    expect(await checker.verify("bob", "nope", gate)).toBeNull();
    expect(await checker.verify("bob", "nope", gate)).toBeNull();
    expect(await checker.verify("nobody", "x", gate)).toBeNull();
    expect(await checker.verify("nobody", "x", gate)).toBeNull();
    expect(derives).toBe(2);
    now += FAILURE_CACHE_MS + 1;
    expect(await checker.verify("bob", "nope", gate)).toBeNull();
    expect(derives).toBe(3);
    expect(await checker.verify("bob", "pw", gate)).not.toBeNull();
    expect(await checker.verify("bob", "pw", gate)).not.toBeNull();
    expect(derives).toBe(4);
  });
});

describe("per-address limit on password derives", () => {
  it("answers 429 past the limit without hashing, but lets an already verified password through", async () => {
    const client = await RawClient.connect(proxy.port);
    expect((await attempt(client, "right", "/first")).status).toBe(200);
    for (let i = 0; i < AUTH_ATTEMPTS_PER_WINDOW; i++) {
      expect((await attempt(client, `wrong-${i}`)).status, `attempt ${i}`).toBe(407);
    }
    // Repeating a known-wrong password costs no derive, so it still gets the plain 407.
    expect((await attempt(client, "wrong-0")).status).toBe(407);
    const limited = await attempt(client, "one-more-guess");
    expect(limited.status).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    const record = await proxy.waitForLog((r) => r.requestId === limited.headers["x-fleetgate-request-id"]);
    expect(record).toMatchObject({ status: 429, action: "auth", rule: "guard:auth-limit" });
    // The right password was verified before: a cache hit, no derive, still served.
    const again = await attempt(client, "right", "/again");
    expect(again.status).toBe(200);
    expect(again.body.toString()).toBe("hello /again");
    client.close();
  });

  it("judges the access list before any password: refused clients use up no attempts", async () => {
    const fresh = await startHarness(makePolicy({ ...authPolicy, access: { clients: ["10.0.0.0/8"] } }));
    try {
      const client = await RawClient.connect(fresh.port);
      for (let i = 0; i < AUTH_ATTEMPTS_PER_WINDOW + 5; i++) {
        const res = await attempt(client, `guess-${i}`);
        expect(res.status).toBe(403);
      }
      client.close();
      // Let the same address in: had those requests been hashed, it would be over the limit now.
      await fresh.applyPolicy(authPolicy);
      const admitted = await RawClient.connect(fresh.port);
      for (let i = 0; i < AUTH_ATTEMPTS_PER_WINDOW; i++) {
        expect((await attempt(admitted, `guess-${i}`)).status, `attempt ${i}`).toBe(407);
      }
      expect((await attempt(admitted, "right")).status).toBe(429);
      admitted.close();
    } finally {
      fresh.kill();
    }
  });
});
