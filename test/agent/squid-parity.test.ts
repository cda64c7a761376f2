// One table of policy cases, sent as real requests through BOTH drivers: the built-in proxy (under
// Bun) and Debian's Squid with the Fleetgate helper. Each case names the expected outcome, and both
// drivers must give it: the same status for refusals, the same access-log action, rule and user.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileForSquid } from "../../agent/proxy/squid/support";
import type { LogRecord } from "../../protocol/wire";
import {
  type Harness,
  makePolicy,
  type Origin,
  passwordHashFor,
  startHarness,
  startOrigin,
} from "./proxy-helpers";
import { connectRequest, rawRequest, type SquidNode, startSquidNode } from "./squid-helpers";

let origin: Origin;
let builtin: Harness;
let squid: SquidNode;
let version = 1;

type Request =
  | { kind: "http"; method: string; url: string; auth?: string; from?: string }
  | { kind: "connect"; authority: string; auth?: string; from?: string };

interface Case {
  name: string;
  request: Request;
  /**
   * forwarded: the policy let it through (the origin answered, or it failed upstream). A name that
   * does not resolve (the .test names) is the guard's `guard:dns` on both drivers: it resolves first.
   */
  expect:
    | { forwarded: true; rule?: string; user?: string }
    | { status: number; action: string; rule?: string; user?: string };
}

interface Outcome {
  status: number;
  action: string;
  rule?: string;
  user?: string;
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

async function send(port: number, request: Request): Promise<number> {
  const auth = request.auth ? `Proxy-Authorization: ${request.auth}\r\n` : "";
  if (request.kind === "connect") {
    return (await connectRequest(port, request.authority, auth, request.from)).status;
  }
  const host = new URL(request.url).host;
  const body = request.method === "POST" ? "Content-Length: 2\r\n\r\nhi" : "\r\n";
  const text = `${request.method} ${request.url} HTTP/1.1\r\nHost: ${host}\r\n${auth}Connection: close\r\n${body}`;
  return (await rawRequest(port, text, request.from)).status;
}

async function nextRecord(records: LogRecord[], before: number): Promise<LogRecord> {
  const until = Date.now() + 15_000;
  while (records.length <= before) {
    if (Date.now() > until) throw new Error("no access-log record for the request");
    await new Promise((r) => setTimeout(r, 10));
  }
  return records[before]!;
}

async function through(driver: "builtin" | "squid", request: Request): Promise<Outcome> {
  const records = driver === "builtin" ? builtin.logs : squid.records;
  const before = records.length;
  const status = await send(driver === "builtin" ? builtin.port : squid.port, request);
  const record = await nextRecord(records, before);
  return { status, action: record.action, rule: record.rule, user: record.user };
}

async function apply(policy: Record<string, unknown>): Promise<void> {
  version++;
  await builtin.applyPolicy(policy);
  await squid.apply(policy, version);
}

function check(c: Case, outcome: Outcome): void {
  const e = c.expect;
  if ("forwarded" in e) {
    expect(["allow", "error"], `${c.name}: action`).toContain(outcome.action);
    expect(outcome.status, `${c.name}: not refused by the proxy`).not.toBe(403);
    expect(outcome.status).not.toBe(407);
    expect({ rule: outcome.rule, user: outcome.user }, c.name).toEqual({ rule: e.rule, user: e.user });
  } else {
    expect(outcome, c.name).toEqual({ status: e.status, action: e.action, rule: e.rule, user: e.user });
  }
}

async function runTable(cases: Case[]): Promise<void> {
  for (const c of cases) {
    const b = await through("builtin", c.request);
    const s = await through("squid", c.request);
    check(c, b);
    check(c, s);
    // Identical, not merely both acceptable: a forwarded request differs only in the upstream error's status.
    expect({ ...s, status: 0 }, `${c.name}: squid vs builtin`).toEqual({ ...b, status: 0 });
  }
}

const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;

beforeAll(async () => {
  origin = await startOrigin((req, res) => res.end(`origin ${req.method} ${req.url}`));
  builtin = await startHarness(null);
  squid = await startSquidNode();
}, 60_000);

afterAll(async () => {
  builtin?.kill();
  await squid?.close();
  await origin?.close();
});

describe("both drivers decide alike", () => {
  it("fails closed without a policy (503)", async () => {
    await runTable([
      {
        name: "no policy",
        request: { kind: "http", method: "GET", url: `http://127.0.0.1:${origin.port}/` },
        expect: { status: 503, action: "error" },
      },
    ]);
  });

  it("domains (exact, suffix, subdomain), regex, methods, ports, CONNECT, schedules, clients", async () => {
    const today = new Date().getUTCDay();
    // Never today nor either neighbour, so the case holds whichever side of midnight it runs.
    const offDays = DAYS.filter((_, i) => ![today, (today + 1) % 7, (today + 6) % 7].includes(i));
    const o = origin.port;
    await apply(
      makePolicy({
        lists: {
          social: { domains: ["social.test"] },
          exact: { domains: ["=exact.test"] },
          subs: { domains: ["*.sub.test"] },
          office: { cidrs: ["127.0.0.2/32"] },
        },
        schedules: {
          always: { tz: "UTC", days: [...DAYS], from: "00:00", to: "24:00" },
          never: { tz: "UTC", days: offDays, from: "00:00", to: "24:00" },
        },
        rules: [
          {
            id: "office-free",
            action: "allow",
            match: { clients: ["@office"], domains: ["social.test", "localhost"] },
          },
          { id: "no-social", action: "block", match: { domains: ["@social"] }, message: "Social is blocked" },
          { id: "no-exact", action: "block", match: { domains: ["@exact"] } },
          { id: "no-subs", action: "block", match: { domains: ["@subs"] } },
          { id: "no-regex", action: "block", match: { urlRegex: "^http://[^/]+/forbidden/[0-9]+" } },
          { id: "no-delete", action: "block", match: { methods: ["DELETE"] } },
          { id: "no-port", action: "block", match: { ports: [8081] } },
          { id: "no-tunnel", action: "block", match: { schemes: ["connect"], domains: ["tunnel.test"] } },
          { id: "sched-on", action: "block", match: { domains: ["sched-on.test"], schedule: "always" } },
          { id: "sched-off", action: "block", match: { domains: ["sched-off.test"], schedule: "never" } },
          { id: "disabled", action: "block", enabled: false, match: { domains: ["disabled.test"] } },
          { id: "origin-ok", action: "allow", match: { ports: [o] } },
        ],
        defaultAction: "allow",
      }),
    );
    const get = (url: string, from?: string): Request => ({ kind: "http", method: "GET", url, from });
    const blocked = (rule: string) => ({ status: 403, action: "block", rule });
    await runTable([
      {
        name: "origin allowed by rule",
        request: get(`http://127.0.0.1:${o}/hello`),
        expect: { forwarded: true, rule: "origin-ok" },
      },
      { name: "list domain", request: get("http://social.test/"), expect: blocked("no-social") },
      {
        name: "subdomain of a list domain",
        request: get("http://www.social.test/a"),
        expect: blocked("no-social"),
      },
      {
        name: "case and trailing dot",
        request: get("http://WWW.Social.TEST./"),
        expect: blocked("no-social"),
      },
      {
        name: "client list first",
        request: get("http://localhost/", "127.0.0.2"),
        expect: { forwarded: true, rule: "office-free" },
      },
      { name: "=exact matches itself", request: get("http://exact.test/"), expect: blocked("no-exact") },
      {
        name: "=exact not its subdomain",
        request: get("http://www.exact.test/"),
        expect: { forwarded: true, rule: "guard:dns" },
      },
      {
        name: "*.sub not the apex",
        request: get("http://sub.test/"),
        expect: { forwarded: true, rule: "guard:dns" },
      },
      { name: "*.sub its subdomain", request: get("http://a.sub.test/"), expect: blocked("no-subs") },
      { name: "url regex", request: get(`http://127.0.0.1:${o}/forbidden/42`), expect: blocked("no-regex") },
      {
        name: "url regex miss",
        request: get(`http://127.0.0.1:${o}/forbidden/x`),
        expect: { forwarded: true, rule: "origin-ok" },
      },
      {
        name: "method",
        request: { kind: "http", method: "DELETE", url: `http://127.0.0.1:${o}/thing` },
        expect: blocked("no-delete"),
      },
      { name: "port", request: get("http://127.0.0.1:8081/"), expect: blocked("no-port") },
      {
        name: "CONNECT allowed",
        request: { kind: "connect", authority: `127.0.0.1:${o}` },
        expect: { forwarded: true, rule: "origin-ok" },
      },
      {
        name: "CONNECT blocked by scheme rule",
        request: { kind: "connect", authority: "tunnel.test:443" },
        expect: blocked("no-tunnel"),
      },
      {
        name: "scheme rule skips plain http",
        request: get("http://tunnel.test/"),
        expect: { forwarded: true, rule: "guard:dns" },
      },
      { name: "schedule in force", request: get("http://sched-on.test/"), expect: blocked("sched-on") },
      {
        name: "schedule not in force",
        request: get("http://sched-off.test/"),
        expect: { forwarded: true, rule: "guard:dns" },
      },
      {
        name: "disabled rule",
        request: get("http://disabled.test/"),
        expect: { forwarded: true, rule: "guard:dns" },
      },
    ]);
  });

  it("authentication, users and groups", async () => {
    const o = origin.port;
    const [alice, bob] = await Promise.all([passwordHashFor("alice-pw"), passwordHashFor("bob-pw")]);
    await apply(
      makePolicy({
        auth: {
          required: true,
          realm: "Fleetgate Test",
          users: [
            { name: "alice", passwordHash: alice, groups: ["staff"] },
            { name: "bob", passwordHash: bob },
          ],
        },
        rules: [
          { id: "bob-origin", action: "block", match: { users: ["bob"], ports: [o] } },
          { id: "staff-social", action: "allow", match: { groups: ["staff"], domains: ["localhost"] } },
          { id: "no-social", action: "block", match: { domains: ["localhost"] } },
        ],
      }),
    );
    const url = `http://127.0.0.1:${o}/in`;
    const asAlice = basic("alice", "alice-pw");
    await runTable([
      {
        name: "no credentials",
        request: { kind: "http", method: "GET", url },
        expect: { status: 407, action: "auth" },
      },
      {
        name: "wrong password",
        request: { kind: "http", method: "GET", url, auth: basic("alice", "nope") },
        expect: { status: 407, action: "auth" },
      },
      {
        name: "valid user",
        request: { kind: "http", method: "GET", url, auth: asAlice },
        expect: { forwarded: true, user: "alice" },
      },
      {
        name: "user rule",
        request: { kind: "http", method: "GET", url, auth: basic("bob", "bob-pw") },
        expect: { status: 403, action: "block", rule: "bob-origin", user: "bob" },
      },
      {
        name: "group rule",
        request: { kind: "http", method: "GET", url: "http://localhost/", auth: asAlice },
        expect: { forwarded: true, rule: "staff-social", user: "alice" },
      },
      {
        name: "no group",
        request: { kind: "http", method: "GET", url: "http://localhost/", auth: basic("bob", "bob-pw") },
        expect: { status: 403, action: "block", rule: "no-social", user: "bob" },
      },
      {
        name: "CONNECT with login",
        request: { kind: "connect", authority: `127.0.0.1:${o}`, auth: asAlice },
        expect: { forwarded: true, user: "alice" },
      },
      {
        name: "CONNECT without login",
        request: { kind: "connect", authority: `127.0.0.1:${o}` },
        expect: { status: 407, action: "auth" },
      },
    ]);
    // The realm is static in Squid: that one change reconfigured it, after `squid -k parse`.
    expect(squid.driver.reconfigures()).toBe(1);
  });

  it("access list and default block", async () => {
    const o = origin.port;
    await apply(
      makePolicy({
        access: { clients: ["127.0.0.1/32"] },
        rules: [{ id: "origin-get", action: "allow", match: { ports: [o], methods: ["GET", "CONNECT"] } }],
        defaultAction: "block",
      }),
    );
    const url = `http://127.0.0.1:${o}/x`;
    await runTable([
      {
        name: "client outside access.clients",
        request: { kind: "http", method: "GET", url, from: "127.0.0.2" },
        expect: { status: 403, action: "block" },
      },
      {
        name: "allowed by rule",
        request: { kind: "http", method: "GET", url },
        expect: { forwarded: true, rule: "origin-get" },
      },
      {
        name: "default block",
        request: { kind: "http", method: "POST", url },
        expect: { status: 403, action: "block" },
      },
      {
        name: "default block, other host",
        request: { kind: "http", method: "GET", url: "http://other.test/" },
        expect: { status: 403, action: "block" },
      },
    ]);
  });

  it("destination guard: defaults, allow, deny, ports, IPv4 spellings", async () => {
    const o = origin.port;
    const get = (url: string): Request => ({ kind: "http", method: "GET", url });
    const guard = (rule: string) => ({ status: 403, action: "block", rule });
    // No destinations section: the defaults (loopback refused, CONNECT to 443 only, HTTP to Safe_ports).
    const { destinations: _, ...noDestinations } = makePolicy();
    await apply(noDestinations);
    await runTable([
      {
        name: "loopback refused by default",
        request: get(`http://127.0.0.1:${o}/`),
        expect: guard("guard:loopback"),
      },
      {
        name: "loopback in another spelling",
        request: get(`http://2130706433:${o}/`),
        expect: guard("guard:loopback"),
      },
      { name: "IPv6 loopback", request: get(`http://[::1]:${o}/`), expect: guard("guard:loopback") },
      {
        name: "link-local (metadata)",
        request: get("http://169.254.169.254/latest/"),
        expect: guard("guard:link-local"),
      },
      { name: "unspecified", request: get(`http://0.0.0.0:${o}/`), expect: guard("guard:unspecified") },
      {
        name: "CONNECT outside connectPorts",
        request: { kind: "connect", authority: "203.0.113.9:8443" },
        expect: guard("guard:port"),
      },
      { name: "HTTP outside httpPorts", request: get("http://203.0.113.9:25/"), expect: guard("guard:port") },
      {
        name: "a name resolving to loopback",
        request: get(`http://localhost:${o}/`),
        expect: guard("guard:loopback"),
      },
    ]);
    // The policy's own section: allow loopback and one port, deny a range, private ranges refused.
    await apply(
      makePolicy({
        destinations: {
          allow: ["127.0.0.0/8"],
          deny: ["127.0.0.9/32"],
          privateRanges: "deny",
          connectPorts: [o],
          httpPorts: [o, 80],
        },
      }),
    );
    await runTable([
      { name: "allowed loopback", request: get(`http://127.0.0.1:${o}/ok`), expect: { forwarded: true } },
      { name: "denied beats allowed", request: get(`http://127.0.0.9:${o}/`), expect: guard("guard:denied") },
      { name: "private range denied", request: get("http://10.1.2.3/"), expect: guard("guard:private") },
      { name: "port not in httpPorts", request: get("http://127.0.0.1:8081/"), expect: guard("guard:port") },
      {
        name: "CONNECT to a listed port",
        request: { kind: "connect", authority: `127.0.0.1:${o}` },
        expect: { forwarded: true },
      },
      {
        name: "CONNECT to 443 not listed",
        request: { kind: "connect", authority: "127.0.0.1:443" },
        expect: guard("guard:port"),
      },
    ]);
  });
});

describe("what Squid cannot enforce is NACKed", () => {
  it("refuses SNI judgement with the reason; destinations are enforced, not NACKed", () => {
    const sni = compileForSquid(makePolicy({ tls: { sniMismatch: "block" } }));
    expect(sni.ok).toBe(false);
    expect(!sni.ok && sni.error).toMatch(
      /not enforceable on a Squid node: tls.sniMismatch "block".*no ssl-bump/,
    );
    expect(compileForSquid(makePolicy({ destinations: { deny: ["10.0.0.0/8"] } })).ok).toBe(true);
    expect(compileForSquid(makePolicy({ tls: { sniMismatch: "log" } })).ok).toBe(true);
    expect(compileForSquid(makePolicy()).ok).toBe(true);
  });
});
