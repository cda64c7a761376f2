// The destination guard (agent/proxy/builtin/destination-guard.ts) against a real proxy under Bun.
// Every request here goes to loopback only: the harness's connect function dials 127.0.0.0/8 and
// ::1 and nothing else — a connection to any other address is recorded (proxy.dials) and failed,
// so a broken guard shows up as a recorded dial and a 502 instead of a 403, never as traffic.
// The loopback origin below is reachable only where a test policy opts in (LOOPBACK_DESTINATIONS).

import { networkInterfaces } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { normalizeHost, parseIpv4Whatwg } from "../../agent/proxy/builtin/destination-guard";
import {
  type Harness,
  LOOPBACK_DESTINATIONS,
  makePolicy,
  type Origin,
  proxyRequest,
  startHarness,
  startOrigin,
} from "./proxy-helpers";

let origin: Origin;
let proxy: Harness;

/** The guard's defaults: no `destinations` section. */
const defaults = makePolicy({ destinations: undefined });

const hosts = {
  "meta.test": ["169.254.169.254"],
  "loop.test": ["127.0.0.1"],
  "intranet.test": ["10.0.0.8"],
  // Rebinding: the first answer is public, every later one loopback.
  "rebind.test": [["198.51.100.20"], ["127.0.0.1"]],
};

beforeAll(async () => {
  origin = await startOrigin((_req, res) => res.end("origin reached"));
  proxy = await startHarness(defaults, ["--hosts", JSON.stringify(hosts)]);
});

afterAll(async () => {
  proxy?.kill();
  await origin?.close();
});

async function get(host: string, port?: number): Promise<{ status: number; body: string; rule?: string }> {
  const authority = port === undefined ? host : `${host}:${port}`;
  const res = await proxyRequest(
    proxy.port,
    `GET http://${authority}/x HTTP/1.1\r\nHost: ${authority}\r\n\r\n`,
  );
  res.client.close();
  const id = res.headers["x-fleetgate-request-id"];
  const record = await proxy.waitForLog((r) => r.requestId === id);
  return { status: res.status, body: res.body.toString(), rule: record.rule };
}

async function connect(target: string): Promise<{ status: number; rule?: string }> {
  const res = await proxyRequest(proxy.port, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  res.client.close();
  const id = res.headers["x-fleetgate-request-id"];
  const record = await proxy.waitForLog((r) => r.requestId === id);
  return { status: res.status, rule: record.rule };
}

describe("host normalisation (WHATWG URL / inet_aton)", () => {
  it("reads every IPv4 spelling as one address and refuses numeric hosts that are no address", () => {
    const cases: [string, string | null][] = [
      ["127.1", "127.0.0.1"],
      ["2130706433", "127.0.0.1"],
      ["0x7f000001", "127.0.0.1"],
      ["0177.0.0.1", "127.0.0.1"],
      ["0x7f.0.0.1", "127.0.0.1"],
      ["127.000.000.001", "127.0.0.1"],
      ["0", "0.0.0.0"],
      ["2852039166", "169.254.169.254"],
      ["127.0.0.1.", "127.0.0.1"],
      ["::ffff:127.0.0.1", "127.0.0.1"],
      ["0:0:0:0:0:0:0:1", "0:0:0:0:0:0:0:1"],
      ["example.com", "example.com"],
      ["0x7f.example", "0x7f.example"],
      ["1.2.3.256", null],
      ["4294967296", null],
      ["08.0.0.1", null],
      ["example.0x1g", "example.0x1g"],
      ["a.1", null],
    ];
    for (const [host, expected] of cases) expect(normalizeHost(host), host).toBe(expected);
    expect(parseIpv4Whatwg("0xffffffff")).toBe(0xffff_ffff);
  });
});

describe("default guard", () => {
  it("refuses the node's loopback in every spelling, with a block page and the reason logged", async () => {
    const spellings: [string, string][] = [
      ["127.0.0.1", "guard:loopback"],
      ["127.1", "guard:loopback"],
      ["2130706433", "guard:loopback"],
      ["0x7f000001", "guard:loopback"],
      ["0177.0.0.1", "guard:loopback"],
      ["0x7f.0.0.1", "guard:loopback"],
      ["127.000.000.001", "guard:loopback"],
      ["127.0.0.1.", "guard:loopback"],
      ["0", "guard:unspecified"],
      ["[::ffff:127.0.0.1]", "guard:loopback"],
      ["[::ffff:7f00:1]", "guard:loopback"],
      ["[::127.0.0.1]", "guard:loopback"],
      ["[0:0:0:0:0:0:0:1]", "guard:loopback"],
      ["[::1]", "guard:loopback"],
      ["[::]", "guard:unspecified"],
      ["localhost", "guard:loopback"],
      ["loop.test", "guard:loopback"],
    ];
    for (const [host, rule] of spellings) {
      const res = await get(host, origin.port);
      expect(res.status, host).toBe(403);
      expect(res.rule, host).toBe(rule);
      expect(res.body).toContain("Destination not allowed");
      expect(res.body).toContain(rule);
    }
    expect(origin.connections).toBe(0);
    expect(proxy.dials).toEqual([]);
  });

  it("refuses link-local (cloud metadata), multicast and reserved addresses without dialling them", async () => {
    const refused: [string, string][] = [
      ["169.254.169.254", "guard:link-local"],
      ["2852039166", "guard:link-local"],
      ["meta.test", "guard:link-local"],
      ["[fe80::1]", "guard:link-local"],
      ["[::ffff:169.254.169.254]", "guard:link-local"],
      ["[64:ff9b::a9fe:a9fe]", "guard:link-local"],
      ["224.0.0.1", "guard:multicast"],
      ["[ff02::1]", "guard:multicast"],
      ["255.255.255.255", "guard:reserved"],
    ];
    for (const [host, rule] of refused) {
      const res = await get(host);
      expect(res.status, host).toBe(403);
      expect(res.rule, host).toBe(rule);
    }
    expect(proxy.dials).toEqual([]);
  });

  it("connects to public and (by default) private addresses, and for a name to exactly the address it judged", async () => {
    proxy.dials.length = 0;
    // Not dialled by the harness: 502, but the connect call proves the guard let them through.
    expect((await get("198.51.100.9")).status).toBe(502);
    expect((await get("10.1.2.3", 8080)).status).toBe(502);
    expect((await get("intranet.test")).status).toBe(502);
    expect((await get("rebind.test")).status).toBe(502);
    expect(proxy.dials).toEqual([
      { host: "198.51.100.9", port: 80 },
      { host: "10.1.2.3", port: 8080 },
      { host: "10.0.0.8", port: 80 },
      // The name resolved once; the proxy dials that address, never the name (which now says 127.0.0.1).
      { host: "198.51.100.20", port: 80 },
    ]);
    const again = await get("rebind.test", origin.port);
    expect(again.status).toBe(403);
    expect(again.rule).toBe("guard:loopback");
    expect(origin.connections).toBe(0);
  });

  it("lets CONNECT reach 443 only and plain HTTP only Squid's safe ports", async () => {
    proxy.dials.length = 0;
    expect(await connect("198.51.100.9:25")).toEqual({ status: 403, rule: "guard:port" });
    expect(await connect("198.51.100.9:22")).toEqual({ status: 403, rule: "guard:port" });
    expect((await connect("198.51.100.9:443")).status).toBe(502);
    expect(await connect("127.1:443")).toEqual({ status: 403, rule: "guard:loopback" });
    expect(await get("198.51.100.9", 25)).toMatchObject({ status: 403, rule: "guard:port" });
    expect(await get("198.51.100.9", 1024)).toMatchObject({ status: 403, rule: "guard:port" });
    for (const port of [21, 70, 210, 280, 443, 488, 591, 777, 1025, 65535]) {
      expect((await get("198.51.100.9", port)).status, String(port)).toBe(502);
    }
    expect(proxy.dials.map((d) => d.port)).toEqual([443, 21, 70, 210, 280, 443, 488, 591, 777, 1025, 65535]);
  });

  it("refuses the node's own (non-loopback) interface addresses", async (context) => {
    const own = Object.values(networkInterfaces())
      .flat()
      .find((i) => i !== undefined && !i.internal && i.family === "IPv4");
    if (own === undefined) {
      context.skip();
      return;
    }
    proxy.dials.length = 0;
    const res = await get(own.address, 8787);
    expect(res).toMatchObject({ status: 403, rule: "guard:self" });
    expect(proxy.dials).toEqual([]);
  });
});

describe("the policy's destinations section", () => {
  let custom: Harness;
  beforeAll(async () => {
    custom = await startHarness(
      makePolicy({
        lists: { blocked: { cidrs: ["203.0.113.0/24"] } },
        rules: [{ id: "no-7", action: "block", match: { urlRegex: "^http://198\\.51\\.100\\.7[:/]" } }],
        destinations: {
          allow: ["127.0.0.0/8"],
          deny: ["@blocked", "198.51.100.66"],
          privateRanges: "deny",
          connectPorts: [443, "8443-8444"],
          httpPorts: [80, String(`${origin.port}-${origin.port}`)],
        },
      }),
    );
  });
  afterAll(() => custom?.kill());

  async function via(p: Harness, text: string): Promise<{ status: number; rule?: string }> {
    const res = await proxyRequest(p.port, text);
    res.client.close();
    const id = res.headers["x-fleetgate-request-id"];
    // Only the proxy's own answers carry its request id; a forwarded one is the origin's.
    if (id === undefined) return { status: res.status };
    const record = await p.waitForLog((r) => r.requestId === id);
    return { status: res.status, rule: record.rule };
  }
  const getVia = (p: Harness, authority: string) =>
    via(p, `GET http://${authority}/ HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  const connectVia = (p: Harness, target: string) =>
    via(p, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);

  it("allows listed CIDRs the guard refuses by default, denies listed ones, and denies private ranges when asked", async () => {
    expect((await getVia(custom, `127.0.0.1:${origin.port}`)).status).toBe(200);
    expect((await getVia(custom, `2130706433:${origin.port}`)).status).toBe(200);
    expect(await getVia(custom, "203.0.113.5")).toEqual({ status: 403, rule: "guard:denied" });
    expect(await getVia(custom, "198.51.100.66")).toEqual({ status: 403, rule: "guard:denied" });
    for (const host of ["10.0.0.1", "172.16.5.5", "192.168.1.1", "100.64.0.1", "[fd00::1]"]) {
      expect(await getVia(custom, host), host).toEqual({ status: 403, rule: "guard:private" });
    }
    expect(custom.dials).toEqual([]);
  });

  it("judges rules on the normalised host, so a spelling cannot dodge a rule written for the address", async () => {
    const n = 198 * 2 ** 24 + 51 * 2 ** 16 + 100 * 2 ** 8 + 7;
    for (const host of [
      "198.51.100.7",
      String(n),
      `0x${n.toString(16)}`,
      "198.51.25607",
      "0306.0x33.100.7",
    ]) {
      expect(await getVia(custom, host), host).toEqual({ status: 403, rule: "no-7" });
    }
  });

  it("uses the listed ports instead of the defaults", async () => {
    expect(await getVia(custom, "198.51.100.9:8080")).toEqual({ status: 403, rule: "guard:port" });
    expect((await connectVia(custom, "198.51.100.9:8444")).status).toBe(502);
    expect(await connectVia(custom, "198.51.100.9:8445")).toEqual({ status: 403, rule: "guard:port" });
    expect(custom.dials).toEqual([{ host: "198.51.100.9", port: 8444 }]);
  });

  it("never lets the proxy connect to its own listening port, even where loopback is allowed", async () => {
    const loop = await startHarness(makePolicy({ destinations: LOOPBACK_DESTINATIONS }));
    try {
      expect(await getVia(loop, `127.0.0.1:${loop.port}`)).toEqual({ status: 403, rule: "guard:self" });
      expect((await getVia(loop, `127.0.0.1:${origin.port}`)).status).toBe(200);
    } finally {
      loop.kill();
    }
  });
});
