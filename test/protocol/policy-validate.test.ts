import { describe, expect, it } from "vitest";
import { compilePolicy } from "../../protocol/policy/compile";
import { PORT_CONNECT, PORT_HTTP } from "../../protocol/policy/destinations";
import { type PolicyIssue, validatePolicy } from "../../protocol/policy/schema";

const HASH = "pbkdf2-sha256$100000$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

function issuesOf(input: unknown): PolicyIssue[] {
  const result = validatePolicy(input);
  return result.ok ? [] : result.issues;
}

function expectIssue(input: unknown, path: string, message: RegExp) {
  const issues = issuesOf(input);
  expect(issues, JSON.stringify(issues)).toContainEqual({ path, message: expect.stringMatching(message) });
}

const minimal = { rules: [], defaultAction: "allow" };
const withRule = (match: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  ...minimal,
  rules: [
    { id: "ok-rule", action: "allow", match: {} },
    { id: "r", action: "block", match },
  ],
  ...extra,
});

describe("validatePolicy: shape", () => {
  it("accepts the minimal policy and fills defaults", () => {
    const result = validatePolicy(minimal);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.policy.lists).toEqual({});
    expect(result.policy.logging).toEqual({ includeQuery: false });
    expect(result.policy.blockPage.title).toBe("Blocked by policy");
    expect(result.policy.access).toBeUndefined();
  });

  it("accepts the DESIGN.md example", () => {
    const result = validatePolicy({
      access: { clients: ["10.0.0.0/8", "127.0.0.0/8"] },
      auth: {
        required: false,
        realm: "Fleetgate",
        users: [{ name: "alice", passwordHash: HASH, groups: ["staff"] }],
      },
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
        {
          id: "no-social",
          name: "No social media at work",
          action: "block",
          match: { domains: ["@social"], clients: ["@office"], schedule: "work-hours" },
          message: "Social media is blocked during work hours.",
        },
      ],
      defaultAction: "allow",
      blockPage: { title: "Blocked by policy", body: "…" },
      logging: { includeQuery: false },
    });
    expect(result).toMatchObject({ ok: true });
  });

  it("rejects {} and non-objects at the root without throwing", () => {
    expect(issuesOf({}).map((i) => i.path)).toEqual(expect.arrayContaining(["rules", "defaultAction"]));
    for (const input of [null, 42, "x", [], true, undefined]) {
      const result = validatePolicy(input);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.issues[0]?.path).toBe("");
    }
  });

  it("rejects unknown keys (strict objects) with their path", () => {
    expectIssue({ ...minimal, extra: 1 }, "", /extra/);
    expectIssue(withRule({ domain: ["x.com"] }), "rules[1].match", /domain/);
  });

  it("checks names, limits and field formats", () => {
    expectIssue({ ...minimal, lists: { "bad name": { domains: [] } } }, 'lists["bad name"]', /invalid name/);
    expectIssue({ ...minimal, rules: [{ id: "-x", action: "allow", match: {} }] }, "rules[0].id", /letters/);
    expectIssue(withRule({ urlRegex: "a".repeat(513) }), "rules[1].match.urlRegex", /513|512|big|long/i);
    expectIssue(withRule({ ports: [0] }), "rules[1].match.ports[0]", /.+/);
    expectIssue(withRule({ schemes: ["ftp"] }), "rules[1].match.schemes[0]", /.+/);
    expectIssue(withRule({ domains: [] }), "rules[1].match.domains", /.+/);
    const tooMany = Array.from({ length: 10_001 }, (_, i) => ({ id: `r${i}`, action: "allow", match: {} }));
    expectIssue({ ...minimal, rules: tooMany }, "rules", /10000/);
  });

  it("reports at most 100 issues", () => {
    const result = validatePolicy({
      ...minimal,
      lists: { big: { domains: Array.from({ length: 500 }, () => "bad domain") } },
    });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues).toHaveLength(100);
  });
});

describe("validatePolicy: cross-checks name their path", () => {
  it("unknown @list in domains and clients", () => {
    expectIssue(withRule({ domains: ["@nope"] }), "rules[1].match.domains[0]", /unknown list "@nope"/);
    expectIssue(withRule({ clients: ["10.0.0.1", "@nope"] }), "rules[1].match.clients[1]", /unknown list/);
    expectIssue({ ...minimal, access: { clients: ["@nope"] } }, "access.clients[0]", /unknown list/);
  });

  it("a list of the wrong kind", () => {
    const lists = { social: { domains: ["facebook.com"] }, office: { cidrs: ["10.0.0.0/8"] } };
    expectIssue(withRule({ clients: ["@social"] }, { lists }), "rules[1].match.clients[0]", /has no cidrs/);
    expectIssue(withRule({ domains: ["@office"] }, { lists }), "rules[1].match.domains[0]", /has no domains/);
  });

  it("unknown schedule", () => {
    expectIssue(withRule({ schedule: "later" }), "rules[1].match.schedule", /unknown schedule "later"/);
  });

  it("duplicate rule ids", () => {
    const rules = [
      { id: "a", action: "allow", match: {} },
      { id: "b", action: "allow", match: {} },
      { id: "a", action: "block", match: {} },
    ];
    expectIssue({ ...minimal, rules }, "rules[2].id", /duplicate rule id "a" \(also rules\[0\]\)/);
  });

  it("bad CIDR or IP", () => {
    expectIssue(withRule({ clients: ["10.0.0.0/33"] }), "rules[1].match.clients[0]", /CIDR/);
    expectIssue(
      { ...minimal, lists: { l: { cidrs: ["10.0.0.0/8", "300.1.1.1"] } } },
      "lists.l.cidrs[1]",
      /CIDR/,
    );
    expectIssue({ ...minimal, access: { clients: ["nope"] } }, "access.clients[0]", /CIDR/);
  });

  it("bad domains; =exact, *.sub, IDN, case and trailing dot are fine", () => {
    const good = [
      "Example.COM.",
      "=exact.org",
      "*.sub.net",
      "bücher.de",
      "xn--bcher-kva.de",
      "_dmarc.example.com",
      "localhost",
    ];
    expect(validatePolicy(withRule({ domains: good })).ok).toBe(true);
    const bad = [
      "exa mple.com",
      "-x.com",
      "x..com",
      "*.",
      "a.*.com",
      "http://x.com",
      "x.com/path",
      "x.com:443",
      "user@x.com",
      "=",
      `${"a".repeat(64)}.com`,
    ];
    const issues = issuesOf(withRule({ domains: bad }));
    expect(issues.map((i) => i.path)).toEqual(bad.map((_, i) => `rules[1].match.domains[${i}]`));
    expectIssue(
      { ...minimal, lists: { l: { domains: ["ok.com", "@other"] } } },
      "lists.l.domains[1]",
      /another list/,
    );
  });

  it("bad regex: does not compile, too long, or nested quantifiers", () => {
    expectIssue(withRule({ urlRegex: "(" }), "rules[1].match.urlRegex", /does not compile/);
    expectIssue(withRule({ urlRegex: "^(a+)+$" }), "rules[1].match.urlRegex", /nested repetition/);
    expectIssue(withRule({ urlRegex: "(\\w+\\.)*example" }), "rules[1].match.urlRegex", /nested repetition/);
    expectIssue(withRule({ urlRegex: "(?:x{2,})+" }), "rules[1].match.urlRegex", /nested repetition/);
    for (const ok of ["^http://[^/]+/admin", "(ab)+", "(a+)?b", "[(a+)+]", "\\(a+\\)+", "(a{1})+"]) {
      expect(validatePolicy(withRule({ urlRegex: ok })).ok, ok).toBe(true);
    }
  });

  it("bad IANA time zone and bad HH:MM", () => {
    const schedule = { tz: "Europe/Berlin", days: ["mon"], from: "09:00", to: "17:00" };
    expectIssue(
      { ...minimal, schedules: { w: { ...schedule, tz: "Mars/Olympus" } } },
      "schedules.w.tz",
      /time zone/,
    );
    expectIssue({ ...minimal, schedules: { w: { ...schedule, from: "9:00" } } }, "schedules.w.from", /HH:MM/);
    expectIssue({ ...minimal, schedules: { w: { ...schedule, to: "24:01" } } }, "schedules.w.to", /HH:MM/);
    expectIssue(
      { ...minimal, schedules: { w: { ...schedule, days: ["monday"] } } },
      "schedules.w.days[0]",
      /.+/,
    );
    expect(validatePolicy({ ...minimal, schedules: { w: { ...schedule, to: "24:00" } } }).ok).toBe(true);
  });

  it("password hash format and duplicate user names", () => {
    const users = [
      { name: "alice", passwordHash: HASH },
      { name: "bob", passwordHash: "plaintext" },
      { name: "alice", passwordHash: HASH },
      {
        name: "carol",
        passwordHash: "pbkdf2-sha256$999999$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
      },
    ];
    const input = { ...minimal, auth: { required: true, users } };
    expectIssue(input, "auth.users[1].passwordHash", /pbkdf2-sha256/);
    expectIssue(input, "auth.users[2].name", /duplicate user "alice"/);
    expectIssue(input, "auth.users[3].passwordHash", /pbkdf2-sha256/);
    expectIssue(
      { ...minimal, auth: { users: [{ name: "a:b", passwordHash: HASH }] } },
      "auth.users[0].name",
      /colon/,
    );
  });

  it("never throws for odd JSON values", () => {
    const odd = [
      { ...minimal, rules: [null] },
      { ...minimal, lists: [] },
      { ...minimal, lists: { a: null } },
      { ...minimal, rules: [{ id: "a", action: "allow", match: { domains: [1, null, {}] } }] },
      { ...minimal, schedules: { a: { tz: 5 } } },
      JSON.parse('{"rules":[],"defaultAction":"allow","__proto__":{"x":1}}'),
      {
        ...minimal,
        lists: { constructor: { domains: ["a.com"] } },
        rules: [{ id: "x", action: "allow", match: { domains: ["@toString"] } }],
      },
    ];
    for (const input of odd) expect(() => validatePolicy(input)).not.toThrow();
    expect(validatePolicy(odd[6]).ok).toBe(false);
  });
});

describe("validatePolicy and compile: destinations and tls", () => {
  const withDestinations = (destinations: unknown, extra: Record<string, unknown> = {}) => ({
    ...minimal,
    destinations,
    ...extra,
  });

  it("accepts CIDRs, @lists, ports and ranges, and compiles them with Squid's port defaults otherwise", () => {
    const valid = validatePolicy(
      withDestinations(
        {
          allow: ["127.0.0.1/32", "@lab"],
          deny: ["::1"],
          privateRanges: "deny",
          connectPorts: [443, "8000-8010"],
        },
        { lists: { lab: { cidrs: ["192.0.2.0/24"] } }, tls: { sniMismatch: "block" } },
      ),
    );
    expect(valid.ok).toBe(true);
    if (!valid.ok) return;
    const d = compilePolicy(valid.policy).destinations;
    expect(d.privateRanges).toBe("deny");
    expect(d.sniMismatch).toBe("block");
    expect(d.allow?.containsV4(0xc0000205)).toBe(true);
    // CONNECT: the listed ports only; plain HTTP: still Squid's Safe_ports.
    expect([443, 8000, 8010, 8011, 22].map((p) => (d.ports[p]! & PORT_CONNECT) !== 0)).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
    expect([80, 21, 1024, 1025, 25, 777].map((p) => (d.ports[p]! & PORT_HTTP) !== 0)).toEqual([
      true,
      true,
      false,
      true,
      false,
      true,
    ]);
    const defaults = validatePolicy(minimal);
    if (!defaults.ok) throw new Error("minimal policy invalid");
    const plain = compilePolicy(defaults.policy).destinations;
    expect(plain).toMatchObject({ allow: null, deny: null, privateRanges: "allow", sniMismatch: "log" });
    expect((plain.ports[443]! & PORT_CONNECT) !== 0 && (plain.ports[8443]! & PORT_CONNECT) === 0).toBe(true);
  });

  it("names bad entries by path", () => {
    expectIssue(withDestinations({ allow: ["not-an-ip"] }), "destinations.allow[0]", /not an IPv4\/IPv6/);
    expectIssue(withDestinations({ deny: ["@missing"] }), "destinations.deny[0]", /unknown list/);
    expectIssue(withDestinations({ connectPorts: ["9-3"] }), "destinations.connectPorts[0]", /range/);
    expectIssue(withDestinations({ httpPorts: [0] }), "destinations.httpPorts[0]", /./);
    expectIssue(withDestinations({ httpPorts: ["80"] }), "destinations.httpPorts[0]", /./);
    expectIssue(withDestinations({ allow: [] }), "destinations.allow", /./);
    expectIssue(withDestinations({ privateRanges: "maybe" }), "destinations.privateRanges", /./);
    expectIssue(withDestinations({ other: 1 }), "destinations", /other/);
    expectIssue({ ...minimal, tls: { sniMismatch: "warn" } }, "tls.sniMismatch", /./);
  });
});
