// The PAC script as a browser runs it: evaluated by pac-resolver in QuickJS.
import { createPacResolver } from "pac-resolver";
import { QuickJS } from "quickjs-wasi";
import { describe, expect, it } from "vitest";
import { proxyAddress, renderPac } from "../../worker/services/pac-script";

const nodes = [
  { nodeId: "node_a", hostname: "a", address: "10.0.0.1:3128" },
  { nodeId: "node_b", hostname: "b", address: "[2001:db8::1]:3128" },
];

describe("PAC script", () => {
  it("fails over in order, bypasses plain names, local domains and networks", async () => {
    const qjs = await QuickJS.create();
    const text = renderPac(
      "berlin",
      { bypass: ["10.20.0.0/16", "corp.example", "192.168.1.7", "fd00::/8"], allowDirect: true },
      nodes,
      new Date(0),
    );
    const find = createPacResolver(qjs, text);
    expect(await find("http://www.example.com/")).toBe(
      "PROXY 10.0.0.1:3128; PROXY [2001:db8::1]:3128; DIRECT",
    );
    expect(await find("https://wiki.corp.example/x")).toBe("DIRECT");
    expect(await find("http://corp.example/")).toBe("DIRECT");
    expect(await find("http://notcorp.example/")).toContain("PROXY");
    expect(await find("http://10.20.9.9/")).toBe("DIRECT");
    expect(await find("http://10.21.9.9/")).toContain("PROXY");
    expect(await find("http://192.168.1.7/")).toBe("DIRECT");
    expect(await find("http://intranet/")).toBe("DIRECT");
  });

  it("without DIRECT and without nodes it names a closed port instead of going direct", async () => {
    const qjs = await QuickJS.create();
    const find = createPacResolver(qjs, renderPac("x", { bypass: [], allowDirect: false }, [], new Date(0)));
    expect(await find("http://www.example.com/")).toBe("PROXY 127.0.0.1:9");
  });

  it("derives a node's address from its listen address and where it polls from", () => {
    expect(proxyAddress({ publicAddress: null, proxyListen: "0.0.0.0:3128", lastAddress: "192.0.2.4" })).toBe(
      "192.0.2.4:3128",
    );
    expect(proxyAddress({ publicAddress: null, proxyListen: "[::]:3128", lastAddress: "2001:db8::5" })).toBe(
      "[2001:db8::5]:3128",
    );
    expect(proxyAddress({ publicAddress: null, proxyListen: "127.0.0.1:8080", lastAddress: "x" })).toBe(
      "127.0.0.1:8080",
    );
    expect(
      proxyAddress({ publicAddress: "proxy.example:3128", proxyListen: "0.0.0.0:1", lastAddress: null }),
    ).toBe("proxy.example:3128");
    expect(proxyAddress({ publicAddress: null, proxyListen: 'bad"host:1', lastAddress: null })).toBeNull();
  });
});
