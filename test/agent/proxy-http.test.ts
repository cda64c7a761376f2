// Plain HTTP through the built-in proxy: forwarding, bodies, keep-alive, headers, errors, access log.

import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Harness,
  makePolicy,
  type Origin,
  proxyRequest,
  RawClient,
  startHarness,
  startOrigin,
} from "./proxy-helpers";

let proxy: Harness;
let origin: Origin;
let lastHeaders: http.IncomingHttpHeaders = {};
let lastRawHeaders: string[] = [];

beforeAll(async () => {
  origin = await startOrigin((req, res) => {
    lastHeaders = req.headers;
    lastRawHeaders = req.rawHeaders;
    const url = req.url ?? "/";
    if (url.startsWith("/echo")) {
      // Streams the request body back, hashed on the way, as a chunked answer.
      const hash = createHash("sha256");
      res.writeHead(200, { "content-type": "application/octet-stream", trailer: "x-sha256" });
      req.on("data", (d: Buffer) => {
        hash.update(d);
        res.write(d);
      });
      req.on("end", () => {
        res.addTrailers({ "x-sha256": hash.digest("hex") });
        res.end();
      });
      return;
    }
    if (url.startsWith("/sink")) {
      const hash = createHash("sha256");
      let n = 0;
      req.on("data", (d: Buffer) => {
        hash.update(d);
        n += d.length;
      });
      req.on("end", () => res.end(JSON.stringify({ bytes: n, sha256: hash.digest("hex") })));
      return;
    }
    if (url.startsWith("/hop")) {
      res.writeHead(200, {
        connection: "x-private",
        "x-private": "secret",
        "keep-alive": "timeout=5",
        "x-end-to-end": "kept",
        "content-length": "2",
      });
      res.end("ok");
      return;
    }
    res.setHeader("content-type", "text/plain");
    res.end(`hello ${req.method} ${url}`);
  });
  proxy = await startHarness(makePolicy());
});

afterAll(async () => {
  proxy?.kill();
  await origin?.close();
});

function originUrl(p: string): string {
  return `http://127.0.0.1:${origin.port}${p}`;
}

describe("plain HTTP forwarding", () => {
  it("forwards a GET in absolute form and adds Via", async () => {
    const res = await proxyRequest(
      proxy.port,
      `GET ${originUrl("/hello?q=1")} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\nConnection: close\r\n\r\n`,
    );
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe("hello GET /hello?q=1");
    expect(res.headers.via).toBe("1.1 fleetgate");
    expect(lastHeaders.via).toBe("1.1 fleetgate");
    expect(lastHeaders.host).toBe(`127.0.0.1:${origin.port}`);
    res.client.close();
  });

  it("forwards a POST body with Content-Length", async () => {
    const body = "name=fleetgate&x=1";
    const res = await proxyRequest(
      proxy.port,
      `POST ${originUrl("/sink")} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    expect(res.status).toBe(200);
    const answer = JSON.parse(res.body.toString()) as { bytes: number; sha256: string };
    expect(answer.bytes).toBe(body.length);
    expect(answer.sha256).toBe(createHash("sha256").update(body).digest("hex"));
    res.client.close();
  });

  it("forwards a chunked request body and a chunked answer with trailers", async () => {
    const client = await RawClient.connect(proxy.port);
    client.send(
      `POST ${originUrl("/echo")} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n` +
        "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n",
    );
    const res = await client.readResponse();
    expect(res.status).toBe(200);
    expect(res.headers["transfer-encoding"]).toBe("chunked");
    const text = res.body.toString();
    expect(text).toContain("hello");
    expect(text).toContain(", world");
    expect(text).toContain(`x-sha256: ${createHash("sha256").update("hello, world").digest("hex")}`);
    expect(lastHeaders["transfer-encoding"]).toBe("chunked");
    client.close();
  });

  it("streams 50 MB up and 50 MB down intact (sha256)", async () => {
    const size = 50 * 1024 * 1024;
    const block = randomBytes(1024 * 1024);
    const expected = createHash("sha256");
    for (let i = 0; i < size / block.length; i++) expected.update(block);
    const expectedHex = expected.digest("hex");

    const result = await new Promise<{ status: number; sha: string; bytes: number; trailer?: string }>(
      (resolve, reject) => {
        const req = http.request({
          host: "127.0.0.1",
          port: proxy.port,
          method: "POST",
          path: originUrl("/echo"),
          headers: { "content-length": String(size), host: `127.0.0.1:${origin.port}` },
        });
        req.on("response", (res) => {
          const hash = createHash("sha256");
          let bytes = 0;
          res.on("data", (d: Buffer) => {
            hash.update(d);
            bytes += d.length;
          });
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              sha: hash.digest("hex"),
              bytes,
              trailer: res.trailers["x-sha256"],
            }),
          );
          res.on("error", reject);
        });
        req.on("error", reject);
        let sent = 0;
        const pump = () => {
          while (sent < size) {
            sent += block.length;
            if (!req.write(block)) {
              req.once("drain", pump);
              return;
            }
          }
          req.end();
        };
        pump();
      },
    );
    expect(result.status).toBe(200);
    expect(result.bytes).toBe(size);
    expect(result.sha).toBe(expectedHex);
    expect(result.trailer).toBe(expectedHex);
    const record = await proxy.waitForLog((r) => r.path === "/echo" && r.bytesIn > size);
    expect(record.bytesOut).toBeGreaterThan(size);
  }, 60_000);

  it("keeps the client connection alive and reuses one upstream connection", async () => {
    const before = origin.connections;
    const client = await RawClient.connect(proxy.port);
    for (let i = 0; i < 5; i++) {
      client.send(`GET ${originUrl(`/ka/${i}`)} HTTP/1.1\r\nHost: x\r\n\r\n`);
      const res = await client.readResponse();
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe(`hello GET /ka/${i}`);
    }
    expect(client.isClosed).toBe(false);
    expect(origin.connections - before).toBeLessThanOrEqual(1);
    client.close();
  });

  it("answers pipelined requests in order", async () => {
    const client = await RawClient.connect(proxy.port);
    client.send(
      `GET ${originUrl("/p/1")} HTTP/1.1\r\nHost: x\r\n\r\nGET ${originUrl("/p/2")} HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect((await client.readResponse()).body.toString()).toBe("hello GET /p/1");
    expect((await client.readResponse()).body.toString()).toBe("hello GET /p/2");
    client.close();
  });

  it("strips hop-by-hop headers both ways, including those named in Connection", async () => {
    const res = await proxyRequest(
      proxy.port,
      `GET ${originUrl("/hop")} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Client-Private\r\n` +
        "X-Client-Private: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n" +
        "Proxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: websocket\r\nX-Kept: yes\r\n\r\n",
    );
    expect(res.status).toBe(200);
    const sentUpstream = lastRawHeaders.filter((_, i) => i % 2 === 0).map((h) => h.toLowerCase());
    for (const h of [
      "x-client-private",
      "keep-alive",
      "proxy-authorization",
      "proxy-connection",
      "te",
      "upgrade",
    ]) {
      expect(sentUpstream).not.toContain(h);
    }
    expect(lastHeaders["x-kept"]).toBe("yes");
    expect(lastHeaders.via).toBe("1.1 fleetgate");
    expect(res.headers["x-private"]).toBeUndefined();
    expect(res.headers["keep-alive"]).toBeUndefined();
    expect(res.headers["x-end-to-end"]).toBe("kept");
    expect(res.headers.via).toBe("1.1 fleetgate");
    expect(res.body.toString()).toBe("ok");
    res.client.close();
  });

  it("serves an HTTP/1.0 client and closes after the answer", async () => {
    const res = await proxyRequest(proxy.port, `GET ${originUrl("/old")} HTTP/1.0\r\n\r\n`);
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe("hello GET /old");
    expect(await res.client.waitClosed()).toBe(true);
  });

  it("answers 400 to an origin-form request", async () => {
    const res = await proxyRequest(proxy.port, "GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n");
    expect(res.status).toBe(400);
    expect(res.body.toString()).toContain("forward proxy");
    res.client.close();
  });

  it("answers 400 to a malformed head and 431 to an oversized one", async () => {
    const bad = await proxyRequest(proxy.port, `GET ${originUrl("/")} HTTP/1.1\r\n Folded: x\r\n\r\n`);
    expect(bad.status).toBe(400);
    const smuggle = await proxyRequest(
      proxy.port,
      `POST ${originUrl("/")} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    );
    expect(smuggle.status).toBe(400);
    const big = await proxyRequest(
      proxy.port,
      `GET ${originUrl("/")} HTTP/1.1\r\nX-Big: ${"a".repeat(70 * 1024)}\r\n\r\n`,
    );
    expect(big.status).toBe(431);
  });

  it("answers 502 when the origin port is closed", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const s = net.createServer();
      s.listen(0, "127.0.0.1", () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const res = await proxyRequest(
      proxy.port,
      `GET http://127.0.0.1:${closedPort}/x HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(res.status).toBe(502);
    expect(res.headers["content-type"]).toContain("text/html");
    const record = await proxy.waitForLog((r) => r.port === closedPort);
    expect(record).toMatchObject({ status: 502, action: "error" });
    res.client.close();
  });

  it("writes one access-log record per request with the documented fields", async () => {
    const res = await proxyRequest(
      proxy.port,
      `GET ${originUrl("/logged/item?secret=1")} HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\n\r\n`,
    );
    expect(res.status).toBe(200);
    const record = await proxy.waitForLog((r) => r.path === "/logged/item");
    expect(record).toMatchObject({
      client: "127.0.0.1",
      method: "GET",
      scheme: "http",
      host: "127.0.0.1",
      port: origin.port,
      path: "/logged/item",
      status: 200,
      action: "allow",
    });
    expect(Number.isNaN(Date.parse(record.ts))).toBe(false);
    expect(record.bytesIn).toBeGreaterThan(40);
    expect(record.bytesOut).toBeGreaterThan(res.body.length);
    expect(record.durationMs).toBeGreaterThanOrEqual(0);
    expect(record.requestId).toMatch(/^[a-z2-7]+$/);
    const ids = new Set(proxy.logs.map((r) => r.requestId));
    expect(ids.size).toBe(proxy.logs.length);
    expect(proxy.logs.filter((r) => r.path?.startsWith("/logged"))).toHaveLength(1);
    res.client.close();
  });

  it("answers HEAD without a body and keeps the connection usable", async () => {
    const client = await RawClient.connect(proxy.port);
    client.send(`HEAD ${originUrl("/head")} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const head = await client.readResponse(5000, true);
    expect(head.status).toBe(200);
    client.send(`GET ${originUrl("/after-head")} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const next = await client.readResponse();
    expect(next.body.toString()).toBe("hello GET /after-head");
    client.close();
  });
});

describe("upstream timeouts", () => {
  let slowProxy: Harness;
  let silent: net.Server;
  let silentPort = 0;
  const held: net.Socket[] = [];

  beforeAll(async () => {
    silent = net.createServer((s) => {
      held.push(s);
      s.on("error", () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    silentPort = (silent.address() as net.AddressInfo).port;
    slowProxy = await startHarness(makePolicy(), ["--upstream-timeout", "600"]);
  });

  afterAll(async () => {
    slowProxy?.kill();
    for (const s of held) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it("answers 504 when the origin accepts but never answers", async () => {
    const started = Date.now();
    const res = await proxyRequest(
      slowProxy.port,
      `GET http://127.0.0.1:${silentPort}/ HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(res.status).toBe(504);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(Date.now() - started).toBeLessThan(5000);
    const record = await slowProxy.waitForLog((r) => r.port === silentPort);
    expect(record).toMatchObject({ status: 504, action: "error" });
    res.client.close();
  });
});

describe("graceful stop", () => {
  it("lets an in-flight request finish, then closes", async () => {
    let release: (() => void) | null = null;
    const slow = await startOrigin((_req, res) => {
      release = () => res.end("late but complete");
    });
    const p = await startHarness(makePolicy());
    try {
      const client = await RawClient.connect(p.port);
      client.send(`GET http://127.0.0.1:${slow.port}/slow HTTP/1.1\r\nHost: x\r\n\r\n`);
      while (release === null) await new Promise((r) => setTimeout(r, 20));
      const stopped = p.stop(5000);
      await new Promise((r) => setTimeout(r, 200));
      // No new connections are accepted while draining.
      await expect(RawClient.connect(p.port)).rejects.toThrow();
      (release as () => void)();
      const res = await client.readResponse();
      expect(res.body.toString()).toBe("late but complete");
      expect(res.headers.connection).toBe("close");
      await stopped;
      expect(await p.exited).toBe(0);
    } finally {
      p.kill();
      await slow.close();
    }
  });
});
