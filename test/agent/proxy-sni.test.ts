// TLS awareness without interception: the proxy reads the ClientHello at the start of a CONNECT
// tunnel (agent/proxy/builtin/tls-sni.ts), judges its server name by the policy and logs it.
// Real ClientHellos come from node's TLS stack; crafted ones (split records, ECH) from the builder
// below. Origins are on loopback: a TLS server with a throwaway certificate and a raw echo server.

import { randomBytes } from "node:crypto";
import http from "node:http";
import type net from "node:net";
import { Duplex } from "node:stream";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { peekClientHello } from "../../agent/proxy/builtin/tls-sni";
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

let material: TlsMaterial;
let tlsServer: EchoServer;
let tlsPort = 0;
let echoServer: EchoServer;
let echoPort = 0;
let proxy: Harness;

const policy = makePolicy({
  rules: [{ id: "no-blocked", action: "block", match: { domains: ["blocked.test"] } }],
});

beforeAll(async () => {
  material = selfSignedCert();
  tlsServer = await startEcho(material);
  tlsPort = tlsServer.port;
  echoServer = await startEcho();
  echoPort = echoServer.port;
  proxy = await startHarness(policy, ["--header-timeout", "600"]);
});

afterAll(async () => {
  proxy?.kill();
  await tlsServer?.close();
  await echoServer?.close();
});

// ---- ClientHello bytes ----

const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
const u24 = (n: number) => Buffer.from([n >> 16, (n >> 8) & 255, n & 255]);

/** A ClientHello handshake message with the given server name and an optional ECH extension. */
function handshake(sni: string | undefined, ech = false): Buffer {
  const extensions: Buffer[] = [];
  if (sni !== undefined) {
    const name = Buffer.from(sni, "latin1");
    const entry = Buffer.concat([Buffer.from([0]), u16(name.length), name]);
    const list = Buffer.concat([u16(entry.length), entry]);
    extensions.push(Buffer.concat([u16(0), u16(list.length), list]));
  }
  if (ech) {
    const payload = randomBytes(200);
    extensions.push(Buffer.concat([u16(0xfe0d), u16(payload.length), payload]));
  }
  const ext = Buffer.concat(extensions);
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    randomBytes(32),
    Buffer.from([0]),
    u16(2),
    Buffer.from([0x13, 0x01]),
    Buffer.from([1, 0]),
    u16(ext.length),
    ext,
  ]);
  return Buffer.concat([Buffer.from([1]), u24(body.length), body]);
}

/** Frames handshake bytes into TLS records of at most `size` bytes each. */
function records(message: Buffer, size = 16_384): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < message.length; at += size) {
    const fragment = message.subarray(at, at + size);
    out.push(Buffer.concat([Buffer.from([22, 3, 1]), u16(fragment.length), fragment]));
  }
  return Buffer.concat(out);
}

/** The first bytes node's own TLS client sends for `servername` (no network: a capturing duplex). */
function realClientHello(servername: string): Promise<Buffer> {
  return new Promise((resolve) => {
    const duplex = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        resolve(chunk);
        callback();
        setImmediate(() => socket.destroy());
      },
    });
    const socket = tls.connect({ socket: duplex, servername });
    socket.on("error", () => {});
  });
}

describe("peekClientHello", () => {
  it("reads the server name from a real ClientHello, also one byte at a time", async () => {
    const hello = await realClientHello("www.Example.com");
    expect(peekClientHello(hello)).toEqual({ kind: "hello", sni: "www.example.com", ech: false });
    for (let n = 0; n < hello.length; n++) expect(peekClientHello(hello.subarray(0, n)).kind).toBe("more");
  });

  it("reassembles a ClientHello split over several TLS records, and sees ECH", () => {
    const message = handshake("split.test", true);
    const framed = records(message, 50);
    expect(framed.length).toBeGreaterThan(message.length + 5 * 4);
    expect(peekClientHello(framed)).toEqual({ kind: "hello", sni: "split.test", ech: true });
    expect(peekClientHello(framed.subarray(0, framed.length - 1)).kind).toBe("more");
  });

  it("tells other protocols, names nothing without SNI, and gives up on malformed or oversized hellos", () => {
    expect(peekClientHello(Buffer.from("SSH-2.0-OpenSSH_9.6\r\n"))).toEqual({ kind: "not-tls" });
    expect(peekClientHello(Buffer.from("GET / HTTP/1.1\r\n"))).toEqual({ kind: "not-tls" });
    expect(peekClientHello(records(handshake(undefined)))).toEqual({ kind: "hello", ech: false });
    expect(peekClientHello(records(handshake("bad name.test"))).kind).toBe("bad");
    const huge = handshake("x.test");
    huge.writeUIntBE(64 * 1024, 1, 3);
    expect(peekClientHello(records(huge)).kind).toBe("bad");
    const alert = Buffer.from([21, 3, 3, 0, 2, 2, 40]);
    expect(peekClientHello(alert)).toEqual({ kind: "not-tls" });
  });
});

// ---- through the proxy ----

/** CONNECT through the proxy; on 200 the raw socket is the tunnel. */
function connectRaw(target: string): Promise<{ status: number; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: proxy.port, method: "CONNECT", path: target });
    req.on("connect", (res, socket) => resolve({ status: res.statusCode ?? 0, socket }));
    req.on("error", reject);
    req.end();
  });
}

/** TLS over a CONNECT tunnel: resolves true on a finished handshake, or the error's text. */
async function tlsThrough(target: string, servername: string): Promise<true | string> {
  const { status, socket } = await connectRaw(target);
  if (status !== 200) return `status ${status}`;
  return new Promise((resolve) => {
    const secure: tls.TLSSocket = tls.connect(
      { socket, servername, ca: material.cert, checkServerIdentity: () => undefined },
      () => {
        secure.end();
        resolve(true);
      },
    );
    secure.on("error", (error) => resolve(error.message));
  });
}

const tunnelRecord = (sni: string) => proxy.waitForLog((r) => r.scheme === "connect" && r.sni === sni, 5000);

describe("SNI in CONNECT tunnels", () => {
  it("logs the server name of an allowed tunnel", async () => {
    expect(await tlsThrough(`127.0.0.1:${tlsPort}`, "localhost")).toBe(true);
    const record = await tunnelRecord("localhost");
    expect(record).toMatchObject({ host: "127.0.0.1", status: 200, action: "allow" });
    expect(record.ech).toBeUndefined();
  });

  it("blocks a blocked name behind an IP-literal CONNECT or an allowed host, before the origin sees a byte", async () => {
    const before = tlsServer.connections;
    const viaIp = await tlsThrough(`127.0.0.1:${tlsPort}`, "www.blocked.test");
    expect(viaIp).toMatch(/access denied/i);
    const viaName = await tlsThrough(`localhost:${tlsPort}`, "blocked.test");
    expect(viaName).toMatch(/access denied/i);
    const first = await tunnelRecord("www.blocked.test");
    expect(first).toMatchObject({ host: "127.0.0.1", status: 403, action: "block", rule: "no-blocked" });
    const second = await tunnelRecord("blocked.test");
    expect(second).toMatchObject({ host: "localhost", status: 403, action: "block", rule: "no-blocked" });
    // Give a stray connection time to show up: none may.
    await new Promise((r) => setTimeout(r, 200));
    expect(tlsServer.connections).toBe(before);
  });

  it("logs a CONNECT host / SNI mismatch by default and refuses it when tls.sniMismatch is block", async () => {
    expect(await tlsThrough(`localhost:${tlsPort}`, "other.test")).toBe(true);
    expect(await tunnelRecord("other.test")).toMatchObject({
      host: "localhost",
      status: 200,
      action: "allow",
    });
    await proxy.applyPolicy({ ...policy, tls: { sniMismatch: "block" } });
    try {
      expect(await tlsThrough(`localhost:${tlsPort}`, "another.test")).toMatch(/access denied/i);
      expect(await tunnelRecord("another.test")).toMatchObject({ status: 403, rule: "tls:sni-mismatch" });
      // An IP-literal CONNECT has no name to mismatch: judged by its SNI alone.
      expect(await tlsThrough(`127.0.0.1:${tlsPort}`, "fine.test")).toBe(true);
      expect(await tlsThrough(`localhost:${tlsPort}`, "localhost")).toBe(true);
    } finally {
      await proxy.applyPolicy(policy);
    }
  });

  it("logs an encrypted ClientHello as such and passes a hello split across TCP segments unchanged", async () => {
    const { status, socket } = await connectRaw(`127.0.0.1:${echoPort}`);
    expect(status).toBe(200);
    const hello = records(handshake("public.ech.test", true), 100);
    for (let at = 0; at < hello.length; at += 37) {
      socket.write(hello.subarray(at, at + 37));
      await new Promise((r) => setTimeout(r, 5));
    }
    const echoed = await new Promise<Buffer>((resolve) => {
      const parts: Buffer[] = [];
      socket.on("data", (d: Buffer) => {
        parts.push(d);
        if (Buffer.concat(parts).length >= hello.length) resolve(Buffer.concat(parts));
      });
    });
    expect(echoed.equals(hello)).toBe(true);
    socket.end();
    const record = await tunnelRecord("public.ech.test");
    expect(record).toMatchObject({ status: 200, action: "allow", ech: true, bytesIn: hello.length });
  });

  it("closes a tunnel whose ClientHello stalls halfway, forwarding nothing", async () => {
    const { status, socket } = await connectRaw(`127.0.0.1:${echoPort}`);
    expect(status).toBe(200);
    const client = RawClient.adopt(socket);
    const hello = records(handshake("slow.test"));
    client.send(hello.subarray(0, 20));
    expect(await client.waitClosed(5000)).toBe(true);
    const record = await proxy.waitForLog((r) => r.scheme === "connect" && r.rule === "tls:timeout");
    expect(record).toMatchObject({ status: 403, action: "block", bytesOut: 0 });
  });
});
