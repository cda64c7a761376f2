import { describe, expect, it } from "vitest";
import { simulate } from "../../protocol/policy/compile";
import { type PolicyInput, validatePolicy } from "../../protocol/policy/schema";
import { blockIf, compile, facts } from "./policy-helpers";

describe("evaluate: rule order and defaults", () => {
  it("returns the default action with reason default when nothing matches", () => {
    expect(compile({ rules: [], defaultAction: "allow" }).evaluate(facts())).toEqual({
      action: "allow",
      reason: "default",
    });
    expect(compile({ rules: [], defaultAction: "block" }).evaluate(facts()).action).toBe("block");
  });

  it("first matching rule wins, top-down", () => {
    const policy = compile({
      rules: [
        { id: "allow-docs", action: "allow", match: { domains: ["docs.example.com"] }, message: "ok" },
        {
          id: "block-example",
          action: "block",
          name: "Example",
          match: { domains: ["example.com"] },
          message: "no",
        },
      ],
      defaultAction: "allow",
    });
    expect(policy.evaluate(facts({ host: "docs.example.com" }))).toEqual({
      action: "allow",
      reason: "rule",
      rule: { id: "allow-docs", message: "ok" },
    });
    expect(policy.evaluate(facts({ host: "www.example.com" }))).toEqual({
      action: "block",
      reason: "rule",
      rule: { id: "block-example", name: "Example", message: "no" },
    });
  });

  it("skips disabled rules", () => {
    const policy = compile({
      rules: [
        { id: "off", action: "allow", enabled: false, match: {} },
        { id: "on", action: "block", enabled: true, match: {} },
      ],
      defaultAction: "allow",
    });
    expect(policy.evaluate(facts()).rule?.id).toBe("on");
  });

  it("an empty match matches every request", () => {
    expect(blockIf({}).evaluate(facts()).action).toBe("block");
  });

  it("fields AND together, values inside a field OR together", () => {
    const policy = blockIf({ domains: ["a.com", "b.com"], methods: ["POST", "PUT"] });
    expect(policy.evaluate(facts({ host: "a.com", method: "POST" })).action).toBe("block");
    expect(policy.evaluate(facts({ host: "b.com", method: "PUT" })).action).toBe("block");
    expect(policy.evaluate(facts({ host: "a.com", method: "GET" })).action).toBe("allow");
    expect(policy.evaluate(facts({ host: "c.com", method: "POST" })).action).toBe("allow");
  });

  it("returns decisions the caller cannot corrupt for later requests", () => {
    const decision = blockIf({}).evaluate(facts());
    expect(Object.isFrozen(decision)).toBe(true);
    expect(decision.trace).toBeUndefined();
  });
});

describe("evaluate: access list and auth come before rules", () => {
  const base = {
    rules: [{ id: "allow-all", action: "allow" as const, match: {} }],
    defaultAction: "allow" as const,
  };

  it("blocks clients outside access.clients with reason access-list", () => {
    const policy = compile({ ...base, access: { clients: ["10.0.0.0/8", "2001:db8::/32"] } });
    expect(policy.evaluate(facts({ client: "192.168.1.1" }))).toEqual({
      action: "block",
      reason: "access-list",
    });
    expect(policy.evaluate(facts({ client: "10.9.9.9" })).action).toBe("allow");
    expect(policy.evaluate(facts({ client: "2001:db8::1" })).action).toBe("allow");
    expect(policy.evaluate(facts({ client: "::ffff:10.1.2.3" })).action).toBe("allow");
    expect(policy.evaluate(facts({ client: "not-an-ip" })).reason).toBe("access-list");
  });

  it("access.clients may reference a cidr list", () => {
    const policy = compile({
      ...base,
      access: { clients: ["@office"] },
      lists: { office: { cidrs: ["10.1.0.0/16"] } },
    });
    expect(policy.evaluate(facts({ client: "10.1.2.3" })).action).toBe("allow");
    expect(policy.evaluate(facts({ client: "10.2.0.1" })).reason).toBe("access-list");
  });

  it("without access, every client is allowed", () => {
    expect(compile(base).evaluate(facts({ client: "203.0.113.9" })).action).toBe("allow");
  });

  it("asks for authentication (407 path) when auth is required and no user is known", () => {
    const policy = compile({ ...base, auth: { required: true, users: [] } });
    expect(policy.authRequired).toBe(true);
    expect(policy.realm).toBe("Fleetgate");
    expect(policy.evaluate(facts())).toEqual({ action: "auth", reason: "auth-required" });
    expect(policy.evaluate(facts({ user: "alice" })).action).toBe("allow");
  });

  it("the access list is judged before authentication", () => {
    const policy = compile({ ...base, access: { clients: ["10.0.0.0/8"] }, auth: { required: true } });
    expect(policy.evaluate(facts({ client: "8.8.8.8" })).reason).toBe("access-list");
  });
});

describe("evaluate: match fields", () => {
  it("users and groups match facts.user / facts.groups", () => {
    const byUser = blockIf({ users: ["alice"] });
    expect(byUser.evaluate(facts({ user: "alice" })).action).toBe("block");
    expect(byUser.evaluate(facts({ user: "bob" })).action).toBe("allow");
    expect(byUser.evaluate(facts()).action).toBe("allow");
    const byGroup = blockIf({ groups: ["staff", "kids"] });
    expect(byGroup.evaluate(facts({ groups: ["kids"] })).action).toBe("block");
    expect(byGroup.evaluate(facts({ groups: ["admins"] })).action).toBe("allow");
    expect(byGroup.evaluate(facts()).action).toBe("allow");
  });

  it("methods are case-insensitive", () => {
    const policy = blockIf({ methods: ["post"] });
    expect(policy.evaluate(facts({ method: "POST" })).action).toBe("block");
    expect(policy.evaluate(facts({ method: "post" })).action).toBe("block");
    expect(policy.evaluate(facts({ method: "GET" })).action).toBe("allow");
  });

  it("ports", () => {
    const policy = blockIf({ ports: [8080, 8443] });
    expect(policy.evaluate(facts({ port: 8443 })).action).toBe("block");
    expect(policy.evaluate(facts({ port: 80 })).action).toBe("allow");
  });

  it("schemes: https and connect both match CONNECT tunnels to any port; http only plain requests", () => {
    const tunnel = facts({ scheme: "connect", method: "CONNECT", port: 8443, path: undefined });
    expect(blockIf({ schemes: ["https"] }).evaluate(tunnel).action).toBe("block");
    expect(blockIf({ schemes: ["connect"] }).evaluate(tunnel).action).toBe("block");
    expect(blockIf({ schemes: ["http"] }).evaluate(tunnel).action).toBe("allow");
    expect(blockIf({ schemes: ["http"] }).evaluate(facts()).action).toBe("block");
    expect(blockIf({ schemes: ["https", "connect"] }).evaluate(facts()).action).toBe("allow");
    expect(blockIf({ schemes: ["https"] }).evaluate(facts({ scheme: "https", port: 443 })).action).toBe(
      "block",
    );
  });

  it("clients: inline CIDRs, single IPs and @lists", () => {
    const policy = blockIf(
      { clients: ["192.168.0.0/16", "10.0.0.7", "@lab"] },
      { lists: { lab: { cidrs: ["fd00::/8"] } } },
    );
    expect(policy.evaluate(facts({ client: "192.168.44.1" })).action).toBe("block");
    expect(policy.evaluate(facts({ client: "10.0.0.7" })).action).toBe("block");
    expect(policy.evaluate(facts({ client: "10.0.0.8" })).action).toBe("allow");
    expect(policy.evaluate(facts({ client: "fd12::1" })).action).toBe("block");
    expect(policy.evaluate(facts({ client: "fe80::1" })).action).toBe("allow");
  });

  it("urlRegex sees http://host:port/path for requests and host:port for CONNECT", () => {
    const policy = blockIf({ urlRegex: "^http://www\\.example\\.com:80/private(/|$)" });
    expect(policy.evaluate(facts({ path: "/private/x?y=1" })).action).toBe("block");
    expect(policy.evaluate(facts({ host: "WWW.Example.com.", path: "/private" })).action).toBe("block");
    expect(policy.evaluate(facts({ path: "/public" })).action).toBe("allow");
    const tunnel = blockIf({ urlRegex: "^secure\\.example\\.com:443$" });
    expect(tunnel.evaluate(facts({ scheme: "connect", host: "secure.example.com", port: 443 })).action).toBe(
      "block",
    );
    expect(tunnel.evaluate(facts({ scheme: "connect", host: "secure.example.com", port: 8443 })).action).toBe(
      "allow",
    );
  });

  it("schedule: the rule only applies inside the window", () => {
    const policy = blockIf(
      { schedule: "work" },
      {
        schedules: {
          work: { tz: "UTC", days: ["mon", "tue", "wed", "thu", "fri"], from: "09:00", to: "17:30" },
        },
      },
    );
    expect(policy.evaluate(facts({ now: Date.UTC(2026, 2, 4, 10, 0) })).action).toBe("block"); // Wed
    expect(policy.evaluate(facts({ now: Date.UTC(2026, 2, 4, 17, 30) })).action).toBe("allow");
    expect(policy.evaluate(facts({ now: Date.UTC(2026, 2, 7, 10, 0) })).action).toBe("allow"); // Sat
  });
});

describe("evaluate: trace", () => {
  const input = {
    access: { clients: ["10.0.0.0/8"] },
    lists: { social: { domains: ["facebook.com", "tiktok.com"] }, office: { cidrs: ["10.1.0.0/16"] } },
    schedules: {
      "work-hours": {
        tz: "Europe/Berlin",
        days: ["mon", "tue", "wed", "thu", "fri"],
        from: "09:00",
        to: "17:30",
      },
    },
    rules: [
      { id: "off", action: "allow", enabled: false, match: {} },
      { id: "posts", action: "block", match: { methods: ["POST"] } },
      {
        id: "no-social",
        action: "block",
        match: { domains: ["@social"], clients: ["@office"], schedule: "work-hours" },
      },
    ],
    defaultAction: "allow",
  } satisfies PolicyInput;

  it("explains each step up to the deciding rule", () => {
    const validated = validatePolicy(input);
    if (!validated.ok) throw new Error(JSON.stringify(validated.issues));
    const decision = simulate(validated.policy, facts({ client: "10.1.2.3", host: "m.facebook.com" }));
    expect(decision.action).toBe("block");
    expect(decision.rule?.id).toBe("no-social");
    expect(decision.trace?.map((s) => [s.step, s.result])).toEqual([
      ["access", "passed"],
      ["auth", "passed"],
      ["off", "skipped"],
      ["posts", "no-match"],
      ["no-social", "match"],
    ]);
    expect(decision.trace?.[3]?.detail).toBe("methods: GET is not one of POST");
    expect(decision.trace?.[4]?.detail).toContain("m.facebook.com matches facebook.com (@social)");
    expect(decision.trace?.[4]?.detail).toContain("schedule: inside work-hours");
  });

  it("explains a domain miss and the default", () => {
    const policy = compile(input);
    const decision = policy.evaluate(facts({ client: "10.1.2.3", host: "www.example.org" }), { trace: true });
    expect(decision.reason).toBe("default");
    expect(decision.trace?.find((s) => s.step === "no-social")?.detail).toBe(
      "domains: no entry matches www.example.org",
    );
    expect(decision.trace?.at(-1)).toEqual({
      step: "default",
      result: "match",
      detail: "no rule matched; defaultAction is allow",
    });
  });

  it("explains an access denial", () => {
    const decision = compile(input).evaluate(facts({ client: "192.0.2.1" }), { trace: true });
    expect(decision.reason).toBe("access-list");
    expect(decision.trace).toEqual([
      { step: "access", result: "denied", detail: "client 192.0.2.1 is not in access.clients (10.0.0.0/8)" },
    ]);
  });
});
