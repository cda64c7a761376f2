// Production limits of the built-in proxy, with test-sized values: a slow or silent client cannot hold
// a connection past the header timeout, a stalled request body is cut off, an idle CONNECT tunnel is
// closed, and connections beyond the cap are closed at accept while the admitted ones keep working.

import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Harness, makePolicy, type Origin, RawClient, startHarness, startOrigin } from "./proxy-helpers";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let origin: Origin;
let echo: net.Server;
let echoPort = 0;
const echoSockets = new Set<net.Socket>();

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    req.resume();
    req.on("end", () => res.end("ok"));
  });
  // A plain TCP echo server: a tunnel target that only talks when spoken to.
  echo = net.createServer((socket) => {
    echoSockets.add(socket);
    socket.on("data", (d) => socket.write(d));
    socket.on("error", () => {});
    socket.on("close", () => echoSockets.delete(socket));
  });
  await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
  echoPort = (echo.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await origin?.close();
  for (const s of echoSockets) s.destroy();
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

const clients: RawClient[] = [];
async function connect(port: number): Promise<RawClient> {
  const client = await RawClient.connect(port);
  clients.push(client);
  return client;
}
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

function get(path = "/"): string {
  return `GET http://127.0.0.1:${origin.port}${path} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`;
}

describe("header and body timeouts", () => {
  let proxy: Harness;
  beforeAll(async () => {
    proxy = await startHarness(makePolicy(), ["--header-timeout", "400", "--body-timeout", "400"]);
  });
  afterAll(() => proxy?.kill());

  it("answers 408 and closes when a head trickles in slower than the header timeout (slowloris)", async () => {
    const client = await connect(proxy.port);
    const started = Date.now();
    client.send(`GET http://127.0.0.1:${origin.port}/slow HTTP/1.1\r\n`);
    // One header byte every 100 ms keeps the connection busy, never finishing the head.
    const trickle = setInterval(() => client.send("X"), 100);
    try {
      const response = await client.readResponse(3000);
      expect(response.status).toBe(408);
      expect(response.headers.connection).toBe("close");
      expect(await client.waitClosed(2000)).toBe(true);
      expect(Date.now() - started).toBeLessThan(2500);
    } finally {
      clearInterval(trickle);
    }
    const record = await proxy.waitForLog((r) => r.status === 408);
    expect(record.action).toBe("error");
  });

  it("closes a connection that never sends a byte, without an access-log record", async () => {
    const before = proxy.logs.length;
    const client = await connect(proxy.port);
    expect(await client.waitClosed(3000)).toBe(true);
    expect(proxy.logs.length).toBe(before);
  });

  it("keeps an idle keep-alive connection past the header timeout (that clock starts at a request's first byte)", async () => {
    const client = await connect(proxy.port);
    client.send(get("/first"));
    expect((await client.readResponse()).status).toBe(200);
    await sleep(900);
    expect(client.isClosed).toBe(false);
    client.send(get("/second"));
    expect((await client.readResponse()).status).toBe(200);
  });

  it("answers 408 and closes when a request body stops arriving", async () => {
    const client = await connect(proxy.port);
    client.send(
      `POST http://127.0.0.1:${origin.port}/upload HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n` +
        "Content-Length: 1000\r\n\r\n" +
        "x".repeat(100),
    );
    const response = await client.readResponse(3000);
    expect(response.status).toBe(408);
    expect(await client.waitClosed(2000)).toBe(true);
    const record = await proxy.waitForLog((r) => r.status === 408 && r.method === "POST");
    expect(record.bytesIn).toBeGreaterThanOrEqual(100);
  });

  it("lets a slow but steady body through (the body timeout is per pause, not per request)", async () => {
    const client = await connect(proxy.port);
    client.send(
      `POST http://127.0.0.1:${origin.port}/steady HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n` +
        "Content-Length: 8\r\n\r\n",
    );
    for (let i = 0; i < 8; i++) {
      await sleep(150);
      client.send("y");
    }
    expect((await client.readResponse(3000)).status).toBe(200);
  });
});

describe("CONNECT tunnel idle timeout", () => {
  let proxy: Harness;
  beforeAll(async () => {
    proxy = await startHarness(makePolicy(), ["--tunnel-idle-timeout", "500"]);
  });
  afterAll(() => proxy?.kill());

  async function openTunnel(): Promise<RawClient> {
    const client = await connect(proxy.port);
    client.send(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nHost: 127.0.0.1:${echoPort}\r\n\r\n`);
    const response = await client.readResponse(3000, true);
    expect(response.status).toBe(200);
    return client;
  }

  it("keeps a tunnel that carries bytes, closes it once quiet for the timeout, and logs it once", async () => {
    const client = await openTunnel();
    // Busy for 1.2 s (longer than the timeout), one round trip every 150 ms.
    for (let i = 0; i < 8; i++) {
      client.send("ping");
      await sleep(150);
    }
    expect(client.isClosed).toBe(false);
    const quietFrom = Date.now();
    expect(await client.waitClosed(3000)).toBe(true);
    // The last bytes moved ~150 ms before quietFrom, so the 500 ms idle timeout ends >= ~350 ms after it.
    expect(Date.now() - quietFrom).toBeGreaterThanOrEqual(300);
    const record = await proxy.waitForLog((r) => r.scheme === "connect" && r.port === echoPort);
    expect(record.status).toBe(200);
    expect(record.bytesIn).toBe(32);
    expect(record.bytesOut).toBe(32);
  });
});

describe("connection cap", () => {
  let proxy: Harness;
  beforeAll(async () => {
    proxy = await startHarness(makePolicy(), ["--max-connections", "3"]);
  });
  afterAll(() => proxy?.kill());

  it("closes connections beyond the cap at once; admitted ones keep working; a freed slot is reused", async () => {
    const held = [await connect(proxy.port), await connect(proxy.port), await connect(proxy.port)];
    await sleep(100);
    // Closed at accept: on a busy machine the reset can even beat the client's own connect event.
    const extra = await connect(proxy.port).catch((error: NodeJS.ErrnoException) => {
      expect(error.code).toBe("ECONNRESET");
      return null;
    });
    if (extra !== null) expect(await extra.waitClosed(1000)).toBe(true);

    held[0]!.send(get("/held"));
    expect((await held[0]!.readResponse()).status).toBe(200);

    held[1]!.close();
    await sleep(200);
    const next = await connect(proxy.port);
    next.send(get("/after"));
    expect((await next.readResponse()).status).toBe(200);
  });
});
