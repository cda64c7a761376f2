// CONNECT tunnels through the built-in proxy to a local TLS origin with a throwaway certificate:
// real bytes both ways, byte counts in the access log, and a policy swap while a tunnel is open.

import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import type net from "node:net";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type EchoServer,
  type Harness,
  makePolicy,
  RawClient,
  selfSignedCert,
  startEcho,
  startHarness,
  type TlsMaterial,
} from "./proxy-helpers";

let proxy: Harness;
let material: TlsMaterial;
let tlsServer: EchoServer;
let tlsPort = 0;

beforeAll(async () => {
  material = selfSignedCert();
  tlsServer = await startEcho(material);
  tlsPort = tlsServer.port;
  proxy = await startHarness(makePolicy());
});

afterAll(async () => {
  proxy?.kill();
  await tlsServer?.close();
});

/** CONNECT through the proxy; resolves with the status and, on 200, a TLS socket over the tunnel. */
function openTunnel(
  proxyPort: number,
  target: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; socket?: tls.TLSSocket; raw?: net.Socket }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port: proxyPort,
      method: "CONNECT",
      path: target,
      headers,
    });
    req.on("connect", (res, raw) => {
      if (res.statusCode !== 200) {
        raw.destroy();
        resolve({ status: res.statusCode ?? 0 });
        return;
      }
      const socket = tls.connect({ socket: raw, ca: material.cert, servername: "localhost" }, () =>
        resolve({ status: 200, socket, raw }),
      );
      socket.on("error", reject);
    });
    req.on("response", (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0 });
    });
    req.on("error", reject);
    req.end();
  });
}

/** Writes `data` and reads exactly as many bytes back. */
function echo(socket: tls.TLSSocket, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= data.length) {
        socket.off("data", onData);
        resolve(Buffer.concat(parts));
      }
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.write(data);
  });
}

describe("CONNECT tunnels", () => {
  it("carries TLS to the origin and bytes both ways", async () => {
    const { status, socket } = await openTunnel(proxy.port, `127.0.0.1:${tlsPort}`);
    expect(status).toBe(200);
    expect(socket!.authorized).toBe(true);
    const hello = Buffer.from("ping through the tunnel");
    expect((await echo(socket!, hello)).toString()).toBe(hello.toString());

    const big = randomBytes(8 * 1024 * 1024);
    const back = await echo(socket!, big);
    expect(createHash("sha256").update(back).digest("hex")).toBe(
      createHash("sha256").update(big).digest("hex"),
    );

    socket!.end();
    const record = await proxy.waitForLog(
      (r) => r.scheme === "connect" && r.port === tlsPort && r.bytesIn > big.length,
    );
    expect(record).toMatchObject({ method: "CONNECT", host: "127.0.0.1", status: 200, action: "allow" });
    expect(record.path).toBeUndefined();
    // TLS framing adds a little on top of the payload in each direction.
    expect(record.bytesOut).toBeGreaterThan(big.length);
  }, 30_000);

  it("answers 502 when the tunnel's target port is closed", async () => {
    const client = await RawClient.connect(proxy.port);
    client.send("CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n");
    const res = await client.readResponse();
    expect(res.status).toBe(502);
    client.close();
  });

  it("answers 400 to CONNECT without a port", async () => {
    const client = await RawClient.connect(proxy.port);
    client.send("CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
    expect((await client.readResponse()).status).toBe(400);
    client.close();
  });

  it("keeps an allowed tunnel running across a policy swap that blocks new ones", async () => {
    const { status, socket } = await openTunnel(proxy.port, `127.0.0.1:${tlsPort}`);
    expect(status).toBe(200);
    expect((await echo(socket!, Buffer.from("before"))).toString()).toBe("before");

    await proxy.applyPolicy(
      makePolicy({
        rules: [{ id: "no-tls-origin", action: "block", match: { ports: [tlsPort] }, message: "not now" }],
      }),
    );
    expect((await echo(socket!, Buffer.from("after the swap"))).toString()).toBe("after the swap");

    const second = await openTunnel(proxy.port, `127.0.0.1:${tlsPort}`);
    expect(second.status).toBe(403);
    const record = await proxy.waitForLog((r) => r.scheme === "connect" && r.status === 403);
    expect(record).toMatchObject({ action: "block", rule: "no-tls-origin", port: tlsPort });

    expect((await echo(socket!, Buffer.from("still here"))).toString()).toBe("still here");
    socket!.end();
    await proxy.applyPolicy(makePolicy());
  });
});
