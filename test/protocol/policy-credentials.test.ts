import { describe, expect, it } from "vitest";
import { CredentialChecker } from "../../protocol/policy/credentials";
import {
  constantTimeEqual,
  hashPassword,
  parsePasswordHash,
  verifyPassword,
} from "../../protocol/policy/password";
import { compile, facts } from "./policy-helpers";

describe("password hashes", () => {
  it("hashPassword produces the documented format and verifyPassword checks it", async () => {
    const encoded = await hashPassword("correct horse", 1000);
    expect(encoded).toMatch(/^pbkdf2-sha256\$1000\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(parsePasswordHash(encoded)?.iterations).toBe(1000);
    expect(await verifyPassword("correct horse", encoded)).toBe(true);
    expect(await verifyPassword("correct horsE", encoded)).toBe(false);
    expect(await verifyPassword("", encoded)).toBe(false);
  });

  it("defaults to the Workers cap of 100,000 iterations and refuses more", async () => {
    expect(parsePasswordHash(await hashPassword("x"))?.iterations).toBe(100_000);
    await expect(hashPassword("x", 100_001)).rejects.toThrow(/iterations/);
    expect(
      parsePasswordHash("pbkdf2-sha256$100001$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"),
    ).toBeNull();
  });

  it("verifyPassword is false (not a throw) for malformed hashes", async () => {
    for (const bad of [
      "",
      "plain",
      "pbkdf2-sha256$x$y$z",
      "pbkdf2-sha1$1000$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
    ]) {
      expect(await verifyPassword("pw", bad)).toBe(false);
    }
  });

  it("constantTimeEqual compares contents and lengths", () => {
    expect(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0))).toBe(false);
  });
});

describe("verifyCredentials", () => {
  it("accepts the right password, rejects wrong ones and unknown users", async () => {
    const alice = await hashPassword("s3cret", 1000);
    const policy = compile({
      auth: { required: true, users: [{ name: "alice", passwordHash: alice, groups: ["staff"] }] },
      rules: [{ id: "staff-only", action: "allow", match: { groups: ["staff"] } }],
      defaultAction: "block",
    });
    const user = await policy.verifyCredentials("alice", "s3cret");
    expect(user).toEqual({ name: "alice", groups: ["staff"] });
    expect(await policy.verifyCredentials("alice", "wrong")).toBeNull();
    expect(await policy.verifyCredentials("Alice", "s3cret")).toBeNull();
    expect(await policy.verifyCredentials("mallory", "s3cret")).toBeNull();
    expect(policy.evaluate(facts()).action).toBe("auth");
    expect(policy.evaluate(facts({ user: user!.name, groups: user!.groups })).rule?.id).toBe("staff-only");
  });

  it("caches successes only, and concurrent checks share one derivation", async () => {
    const checker = new CredentialChecker([
      { name: "bob", passwordHash: await hashPassword("pw", 1000), groups: [] },
    ]);
    expect(await checker.verify("bob", "nope")).toBeNull();
    expect(checker.cachedCount).toBe(0);
    const [a, b] = await Promise.all([checker.verify("bob", "pw"), checker.verify("bob", "pw")]);
    expect(a).toBe(b);
    expect(checker.cachedCount).toBe(1);
    expect(await checker.verify("bob", "pw")).toBe(a);
    expect(await checker.verify("bob", "pw2")).toBeNull();
  });
});
