// WebSocket over plain HTTP through the proxy: the `ws` client sends `ws://` as an absolute-form
// GET with `Upgrade: websocket` (the way browsers and proxy agents do for a plain-HTTP proxy); the
// proxy forwards the Upgrade the client asked for when the policy allows the request, and after the
// origin's 101 the connection is a tunnel, logged once when it ends like a CONNECT tunnel.

import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { type Harness, makePolicy, startHarness } from "./proxy-helpers";

let server: WebSocketServer;
let wsPort = 0;
let proxy: Harness;
const upgradePaths: string[] = [];

/** Sends every request to the proxy in absolute form ("GET http://host:port/path"). */
class ForwardProxyAgent extends http.Agent {
  constructor(private readonly proxyPort: number) {
    super({ keepAlive: false });
  }
  override createConnection(): net.Socket {
    return net.connect(this.proxyPort, "127.0.0.1");
  }
}
const addRequest = (
  http.Agent.prototype as unknown as { addRequest: (req: http.ClientRequest, o: http.RequestOptions) => void }
).addRequest;
(ForwardProxyAgent.prototype as unknown as { addRequest: typeof addRequest }).addRequest = function (
  this: http.Agent,
  req: http.ClientRequest,
  options: http.RequestOptions,
) {
  req.path = `http://${options.host}:${options.port}${req.path}`;
  addRequest.call(this, req, options);
};

beforeAll(async () => {
  server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  server.on("connection", (socket, req) => {
    upgradePaths.push(req.url ?? "");
    socket.on("message", (data, binary) =>
      socket.send(binary ? data : `echo: ${data.toString()}`, { binary }),
    );
  });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  wsPort = (server.address() as net.AddressInfo).port;
  proxy = await startHarness(
    makePolicy({ rules: [{ id: "no-secret-chat", action: "block", match: { urlRegex: "/secret" } }] }),
  );
});

afterAll(async () => {
  proxy?.kill();
  for (const client of server.clients) client.terminate();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function open(path: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${wsPort}${path}`, { agent: new ForwardProxyAgent(proxy.port) });
    ws.once("open", () => resolve(ws));
    ws.once("unexpected-response", (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    ws.once("error", reject);
  });
}

function next(ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> {
  return new Promise((resolve) =>
    ws.once("message", (data, binary) => resolve({ data: data as Buffer, binary })),
  );
}

describe("WebSocket over plain HTTP", () => {
  it("upgrades through the proxy, carries messages both ways and logs the tunnel once", async () => {
    const ws = await open("/chat?room=1");
    expect(upgradePaths).toContain("/chat?room=1");
    const reply = next(ws);
    ws.send("hello");
    expect((await reply).data.toString()).toBe("echo: hello");
    const big = Buffer.alloc(1024 * 1024, 7);
    const bigReply = next(ws);
    ws.send(big);
    const back = await bigReply;
    expect(back.binary).toBe(true);
    expect(back.data.equals(big)).toBe(true);
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
    ws.close(1000, "done");
    expect(await closed).toBe(1000);
    const record = await proxy.waitForLog((r) => r.port === wsPort && r.status === 101);
    expect(record).toMatchObject({
      method: "GET",
      scheme: "http",
      host: "127.0.0.1",
      path: "/chat",
      action: "allow",
    });
    expect(record.bytesIn).toBeGreaterThan(big.length);
    expect(record.bytesOut).toBeGreaterThan(big.length);
    expect(proxy.logs.filter((r) => r.port === wsPort && r.path === "/chat")).toHaveLength(1);
  });

  it("refuses the upgrade where the policy blocks the request", async () => {
    await expect(open("/secret-room")).rejects.toThrow("status 403");
    const record = await proxy.waitForLog((r) => r.port === wsPort && r.path === "/secret-room");
    expect(record).toMatchObject({ status: 403, action: "block", rule: "no-secret-chat" });
    expect(upgradePaths).not.toContain("/secret-room");
  });
});
