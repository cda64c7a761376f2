// HTTP/1.1 conformance of the built-in proxy (RFC 9110, RFC 9112 §2-§7), byte sequence by byte
// sequence: each case goes over a raw socket to the real proxy (under Bun), and the test checks
// both what the client gets (status, fields, connection closed or kept) and what a recording
// origin (raw TCP, every byte kept) received: nothing smuggled, nothing reframed.
// Cases are written from the RFCs, with the llhttp test corpus as a list of edge cases to think of.

import net from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { toRecord } from "../../agent/proxy/builtin/context";
import { LogRecord } from "../../protocol/wire";
import { type Harness, makePolicy, RawClient, type RawResponse, startHarness } from "./proxy-helpers";

const OK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/** Where a request message the proxy sent ends in `buf` (it frames what it forwards), or -1. */
function requestEnd(buf: Buffer): number {
  const headEnd = buf.indexOf("\r\n\r\n");
  if (headEnd < 0) return -1;
  const head = buf.toString("latin1", 0, headEnd).toLowerCase();
  const bodyStart = headEnd + 4;
  const length = /\r\ncontent-length: *(\d+)/.exec(head);
  if (length) return buf.length >= bodyStart + Number(length[1]) ? bodyStart + Number(length[1]) : -1;
  if (!/\r\ntransfer-encoding: *chunked/.test(head)) return bodyStart;
  for (let at = bodyStart; ; ) {
    const lineEnd = buf.indexOf("\r\n", at);
    if (lineEnd < 0) return -1;
    const size = Number.parseInt(buf.toString("latin1", at, lineEnd), 16);
    if (size === 0) {
      const end = buf.indexOf("\r\n\r\n", lineEnd);
      return end < 0 ? -1 : end + 4;
    }
    at = lineEnd + 2 + size + 2;
    if (at > buf.length) return -1;
  }
}

/** A raw TCP origin that records every byte and answers each complete request with `answer`. */
class RecordingOrigin {
  port = 0;
  /** The connection that sent the last answer. */
  answeredOn: net.Socket | null = null;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private received: Buffer[] = [];
  private answer = OK;
  private closeAfter = false;

  constructor() {
    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      let pending = Buffer.alloc(0);
      socket.on("data", (d: Buffer) => {
        this.received.push(d);
        pending = Buffer.concat([pending, d]);
        for (let end = requestEnd(pending); end > 0; end = requestEnd(pending)) {
          pending = pending.subarray(end);
          socket.write(Buffer.from(this.answer, "latin1"));
          this.answeredOn = socket;
          if (this.closeAfter) socket.end();
        }
      });
      socket.on("error", () => {});
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Forget what was received and answer `answer` (raw bytes, latin1) from now on. */
  reset(answer = OK, closeAfter = false): void {
    this.received = [];
    this.answer = answer;
    this.closeAfter = closeAfter;
  }

  /** Everything received since the last reset, as latin1. */
  get bytes(): string {
    return Buffer.concat(this.received).toString("latin1");
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

let proxy: Harness;
let origin: RecordingOrigin;
/** The origin's authority, as a client puts it in an absolute-form target. */
let O = "";

beforeAll(async () => {
  origin = new RecordingOrigin();
  await origin.start();
  O = `127.0.0.1:${origin.port}`;
  // A header timeout far beyond the read bounds below: an answer that waits for it fails the test.
  proxy = await startHarness(makePolicy(), ["--header-timeout", "60000"]);
});

afterAll(async () => {
  proxy?.kill();
  await origin?.close();
});

beforeEach(() => origin.reset());

/** Sends raw bytes (latin1) on a fresh connection and reads one answer. */
async function exchange(bytes: string): Promise<RawResponse & { client: RawClient }> {
  const client = await RawClient.connect(proxy.port);
  client.send(Buffer.from(bytes, "latin1"));
  const response = await client.readResponse(10_000);
  return { ...response, client };
}

/** The connection stays usable: a second request on it is forwarded and answered. */
async function expectKept(client: RawClient, path = "/next"): Promise<void> {
  origin.reset();
  client.send(`GET http://${O}${path} HTTP/1.1\r\nHost: ${O}\r\n\r\n`);
  const next = await client.readResponse(10_000);
  expect(next.status).toBe(200);
  expect(origin.bytes).toContain(`GET ${path} HTTP/1.1\r\n`);
  client.close();
}

async function expectClosed(client: RawClient): Promise<void> {
  expect(await client.waitClosed(10_000)).toBe(true);
}

/** Nothing that looks like a second request, a control byte or a bare LF reached the origin. */
function expectNothingSmuggled(): void {
  const got = origin.bytes;
  expect(got).not.toContain("smuggled");
  expect(got).not.toMatch(/[^\t\n\r\x20-\x7e\x80-\xff]/);
  expect(got).not.toMatch(/(^|[^\r])\n/);
}

const SMUGGLED = () => `GET http://${O}/smuggled HTTP/1.1\r\nHost: ${O}\r\n\r\n`;

interface Refused {
  name: string;
  bytes: () => string;
  status: number;
}

// Refused before anything reaches the origin: the answer, then the connection closes.
const refusedHeads: Refused[] = [
  // Bytes in heads (RFC 9110 §5.5, RFC 9112 §3.2)
  {
    name: "NUL in a header value",
    bytes: () => `GET http://${O}/ HTTP/1.1\r\nX-Nul: a\0b\r\n\r\n`,
    status: 400,
  },
  {
    name: "SOH in a header value",
    bytes: () => `GET http://${O}/ HTTP/1.1\r\nX-C: a\x01b\r\n\r\n`,
    status: 400,
  },
  {
    name: "DEL in a header value",
    bytes: () => `GET http://${O}/ HTTP/1.1\r\nX-C: a\x7fb\r\n\r\n`,
    status: 400,
  },
  {
    name: "ESC in a header value",
    bytes: () => `GET http://${O}/ HTTP/1.1\r\nX-C: \x1b[2J\r\n\r\n`,
    status: 400,
  },
  { name: "raw NUL in the path", bytes: () => `GET http://${O}/a\0b HTTP/1.1\r\n\r\n`, status: 400 },
  { name: "raw UTF-8 in the path", bytes: () => `GET http://${O}/\xc3\xa4 HTTP/1.1\r\n\r\n`, status: 400 },
  { name: "a space inside the target", bytes: () => `GET http://${O}/a b HTTP/1.1\r\n\r\n`, status: 400 },
  { name: "HTAB inside the target", bytes: () => `GET http://${O}/a\tb HTTP/1.1\r\n\r\n`, status: 400 },
  {
    name: "a double space in the request line",
    bytes: () => `GET  http://${O}/ HTTP/1.1\r\n\r\n`,
    status: 400,
  },
  // Bare LF as a line end: answered at once, not at the (60 s) header timeout
  {
    name: "a head whose lines all end in bare LF",
    bytes: () => `GET http://${O}/ HTTP/1.1\nHost: a\n\n`,
    status: 400,
  },
  {
    name: "a bare LF after CRLF lines (the head never completes)",
    bytes: () => `GET http://${O}/ HTTP/1.1\r\nHost: a\nX: 1\n\n`,
    status: 400,
  },
  {
    name: "a bare LF inside a complete head",
    bytes: () => `GET http://${O}/ HTTP/1.1\r\nX: 1\nHost: a\r\n\r\n`,
    status: 400,
  },
  // Framing (RFC 9112 §6)
  {
    name: "HTTP/1.0 with Transfer-Encoding: chunked and a request after its body",
    bytes: () => `POST http://${O}/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED()}`,
    status: 400,
  },
  {
    name: "Transfer-Encoding: chunked, chunked",
    bytes: () => `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`,
    status: 400,
  },
  {
    name: "Transfer-Encoding: identity, chunked",
    bytes: () => `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n`,
    status: 400,
  },
  {
    name: "Transfer-Encoding: chunked on two lines",
    bytes: () =>
      `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    status: 400,
  },
  {
    name: "an empty Transfer-Encoding line before a chunked one",
    bytes: () =>
      `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    status: 400,
  },
  {
    name: "Transfer-Encoding: chunkedchunked",
    bytes: () => `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding: chunkedchunked\r\n\r\n0\r\n\r\n`,
    status: 400,
  },
  // Kept from before: CL.TE, TE.CL, obfuscated Transfer-Encoding, obs-fold, huge heads
  {
    name: "Content-Length then Transfer-Encoding (CL.TE)",
    bytes: () =>
      `POST http://${O}/ HTTP/1.1\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX${SMUGGLED()}`,
    status: 400,
  },
  {
    name: "Transfer-Encoding then Content-Length (TE.CL)",
    bytes: () =>
      `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5c\r\n${SMUGGLED()}\r\n0\r\n\r\n`,
    status: 400,
  },
  {
    name: "a space before the colon of Transfer-Encoding",
    bytes: () => `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n`,
    status: 400,
  },
  {
    name: "Transfer-Encoding folded onto a second line (obs-fold)",
    bytes: () => `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`,
    status: 400,
  },
  {
    name: "a NUL-separated Transfer-Encoding value",
    bytes: () => `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding: chunked\0\r\n\r\n0\r\n\r\n`,
    status: 400,
  },
  {
    name: "10,000 header lines",
    bytes: () => `GET http://${O}/ HTTP/1.1\r\n${"X-A: 1\r\n".repeat(10_000)}\r\n`,
    status: 431,
  },
];

// The head is fine, the chunked body is not: the bad bytes never reach the origin.
const refusedBodies: Refused[] = [
  {
    name: "a chunk size followed by a space (`5 `)",
    bytes: () => `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n`,
    status: 400,
  },
  {
    name: "junk after a chunk size without `;` (`2 junk`)",
    bytes: () => `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2 junk\r\naa\r\n0\r\n\r\n`,
    status: 400,
  },
  {
    name: "a bare LF after a chunk size",
    bytes: () => `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\naa\r\n0\r\n\r\n`,
    status: 400,
  },
  {
    name: "a NUL in a chunk extension",
    bytes: () => `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;a\0\r\naa\r\n0\r\n\r\n`,
    status: 400,
  },
  {
    name: "a bare LF in a chunked trailer, then a request",
    bytes: () => `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\n${SMUGGLED()}`,
    status: 400,
  },
  {
    name: "a control byte in a chunked trailer",
    bytes: () => `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\x01b\r\n\r\n`,
    status: 400,
  },
  {
    name: "a trailer line that is not a header field",
    bytes: () => `POST http://${O}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nnot a header\r\n\r\n`,
    status: 400,
  },
];

describe("requests the proxy refuses", () => {
  it.each(refusedHeads)("$name → $status, closed, nothing reaches the origin", async ({ bytes, status }) => {
    const res = await exchange(bytes());
    expect(res.status).toBe(status);
    expect(res.headers.connection).toBe("close");
    await expectClosed(res.client);
    expect(origin.bytes).toBe("");
  });

  it.each(refusedBodies)(
    "$name → $status, closed, the bad bytes never reach the origin",
    async ({ bytes, status }) => {
      const res = await exchange(bytes());
      expect(res.status).toBe(status);
      await expectClosed(res.client);
      expectNothingSmuggled();
    },
  );

  it("refuses a bare-LF head sent in pieces at its first bare LF", async () => {
    const client = await RawClient.connect(proxy.port);
    client.send(`GET http://${O}/ HTTP/1.1\r\n`);
    await new Promise((r) => setTimeout(r, 100));
    client.send("Host: a\r");
    await new Promise((r) => setTimeout(r, 100));
    client.send("\nX: 1\n");
    const res = await client.readResponse(10_000);
    expect(res.status).toBe(400);
    await expectClosed(client);
    expect(origin.bytes).toBe("");
  });
});

describe("requests the proxy forwards", () => {
  it("passes HTAB and obs-text in header values unchanged", async () => {
    const res = await exchange(`GET http://${O}/bytes HTTP/1.1\r\nX-Tab: a\tb\r\nX-Latin: caf\xe9\r\n\r\n`);
    expect(res.status).toBe(200);
    expect(origin.bytes).toContain("\r\nX-Tab: a\tb\r\nX-Latin: caf\xe9\r\n");
    await expectKept(res.client);
  });

  it("relays a strict chunked body with extensions and trailers byte for byte", async () => {
    const body = '5;name="v; x"\r\nhello\r\n6 ;e\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n';
    const res = await exchange(
      `POST http://${O}/chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
    );
    expect(res.status).toBe(200);
    expect(origin.bytes).toMatch(/^POST \/chunked HTTP\/1\.1\r\n/);
    expect(origin.bytes).toContain("\r\nTransfer-Encoding: chunked\r\n");
    expect(origin.bytes.endsWith(`\r\n\r\n${body}`)).toBe(true);
    await expectKept(res.client);
  });

  it("answers OPTIONS with Max-Forwards: 0 itself: 200 with Allow, the origin sees nothing", async () => {
    const res = await exchange(`OPTIONS http://${O}/x HTTP/1.1\r\nMax-Forwards: 0\r\n\r\n`);
    expect(res.status).toBe(200);
    expect(res.headers.allow).toContain("GET");
    expect(res.headers["content-length"]).toBe("0");
    expect(origin.bytes).toBe("");
    await expectKept(res.client);
  });

  it("answers TRACE with Max-Forwards: 0 itself: the request head as message/http, without credentials", async () => {
    const res = await exchange(
      `TRACE http://${O}/t HTTP/1.1\r\nMax-Forwards: 0\r\nX-Trace: 1\r\nCookie: s=1\r\nAuthorization: Basic eDp5\r\n\r\n`,
    );
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("message/http");
    expect(res.body.toString("latin1")).toBe(
      `TRACE http://${O}/t HTTP/1.1\r\nMax-Forwards: 0\r\nX-Trace: 1\r\n\r\n`,
    );
    expect(origin.bytes).toBe("");
    await expectKept(res.client);
  });

  it.each(["OPTIONS", "TRACE"])("decrements Max-Forwards on %s when forwarding", async (method) => {
    const res = await exchange(`${method} http://${O}/mf HTTP/1.1\r\nMax-Forwards: 3\r\nX: 1\r\n\r\n`);
    expect(res.status).toBe(200);
    expect(origin.bytes).toContain("\r\nMax-Forwards: 2\r\n");
    expect(origin.bytes).not.toContain("Max-Forwards: 3");
    await expectKept(res.client);
  });

  it("refuses OPTIONS with an invalid Max-Forwards", async () => {
    const res = await exchange(`OPTIONS http://${O}/ HTTP/1.1\r\nMax-Forwards: x\r\n\r\n`);
    expect(res.status).toBe(400);
    await expectClosed(res.client);
    expect(origin.bytes).toBe("");
  });

  it("leaves Max-Forwards of other methods alone (RFC 9110 §7.6.2)", async () => {
    const res = await exchange(`GET http://${O}/g HTTP/1.1\r\nMax-Forwards: 0\r\n\r\n`);
    expect(res.status).toBe(200);
    expect(origin.bytes).toContain("\r\nMax-Forwards: 0\r\n");
    await expectKept(res.client);
  });

  it("forwards OPTIONS for a URL without a path as OPTIONS * (RFC 9112 §3.2.4)", async () => {
    const res = await exchange(`OPTIONS http://${O} HTTP/1.1\r\n\r\n`);
    expect(res.status).toBe(200);
    expect(origin.bytes).toMatch(/^OPTIONS \* HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\n/);
    origin.reset();
    res.client.send(`OPTIONS http://${O}/ HTTP/1.1\r\n\r\n`);
    expect((await res.client.readResponse(10_000)).status).toBe(200);
    expect(origin.bytes).toMatch(/^OPTIONS \/ HTTP\/1\.1\r\n/);
    await expectKept(res.client);
  });
});

describe("answers from origins", () => {
  const get = () => `GET http://${O}/answer HTTP/1.1\r\n\r\n`;

  it("drops Content-Length beside Transfer-Encoding, relays chunked, closes the client after", async () => {
    // A client trusting the length would read "5\r\n" and take the rest for a second answer.
    const hidden = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    const chunked = `${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n`;
    origin.reset(
      `HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n${chunked}`,
    );
    const res = await exchange(get());
    expect(res.status).toBe(200);
    expect(res.headers["content-length"]).toBeUndefined();
    expect(res.headers["transfer-encoding"]).toBe("chunked");
    expect(res.headers.connection).toBe("close");
    expect(res.headers.x).toBe("y");
    // readResponse reads to the close: exactly the chunked body, nothing after it.
    expect(res.body.toString("latin1")).toBe(chunked);
    await expectClosed(res.client);
    // The origin connection is not reused either: the proxy closes it.
    const upstream = origin.answeredOn!;
    await new Promise<void>((resolve, reject) => {
      if (upstream.closed) return resolve();
      const timer = setTimeout(() => reject(new Error("origin connection still open")), 10_000);
      upstream.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  });

  it.each([
    ["NUL in a header value", "HTTP/1.1 200 OK\r\nX-Nul: a\0b\r\nContent-Length: 2\r\n\r\nok"],
    ["a control byte in the reason phrase", "HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nok"],
    ["a bare LF line end", "HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\nok"],
    [
      "Transfer-Encoding: gzip, chunked",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    ],
    [
      "Transfer-Encoding: chunked, chunked",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    ],
    ["HTTP/1.0 with Transfer-Encoding", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
    [
      "a chunk size followed by a space",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nok\r\n0\r\n\r\n",
    ],
    [
      "junk after a chunk size",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 junk\r\nok\r\n0\r\n\r\n",
    ],
    [
      "a bare LF in a trailer",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\nY: b\r\n\r\n",
    ],
  ])("an answer with %s → 502, the client connection kept", async (_name, answer) => {
    origin.reset(answer, true);
    const res = await exchange(get());
    expect(res.status).toBe(502);
    expect(res.headers["x-fleetgate-request-id"]).toBeDefined();
    await expectKept(res.client);
  });

  it("cuts a chunked answer that goes bad after its head went out", async () => {
    const client = await RawClient.connect(proxy.port);
    let socket: net.Socket | undefined;
    const server = net.createServer((s) => {
      socket = s;
      s.on("error", () => {});
      s.once("data", () => s.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      client.send(`GET http://127.0.0.1:${port}/ HTTP/1.1\r\n\r\n`);
      await new Promise((r) => setTimeout(r, 300));
      socket!.write("0\r\nX-T: a\nGET / HTTP/1.1\r\n\r\n");
      expect(await client.waitClosed(10_000)).toBe(true);
    } finally {
      client.close();
      socket?.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});

describe("domain block lists", () => {
  it("blocks 127.0.0.1 and localhost in every ordering of [127.0.0.1, 0.0.0.0, localhost, 169.254.169.254]", async () => {
    const names = ["127.0.0.1", "0.0.0.0", "localhost", "169.254.169.254"];
    const orderings: string[][] = [];
    const permute = (rest: string[], prefix: string[]) => {
      if (rest.length === 0) orderings.push(prefix);
      rest.forEach((n, i) => {
        permute([...rest.slice(0, i), ...rest.slice(i + 1)], [...prefix, n]);
      });
    };
    permute(names, []);
    expect(orderings).toHaveLength(24);
    try {
      for (const domains of orderings) {
        await proxy.applyPolicy(
          makePolicy({ rules: [{ id: "local", action: "block", match: { domains } }] }),
        );
        // Only loopback names are requested: a miss must reach the recording origin, never the network.
        for (const host of ["127.0.0.1", "localhost"]) {
          const res = await exchange(`GET http://${host}:${origin.port}/ HTTP/1.1\r\n\r\n`);
          expect(res.status, `${domains.join(",")}: ${host}`).toBe(403);
          res.client.close();
        }
      }
      expect(origin.bytes).toBe("");
    } finally {
      await proxy.applyPolicy(makePolicy());
    }
  });
});

describe("access-log records", () => {
  it("every logged field fits what the master accepts, even for what a client can make long", async () => {
    const method = "M".repeat(300);
    const res = await exchange(`${method} http://${O}/${"p".repeat(5000)} HTTP/1.1\r\n\r\n`);
    expect(res.status).toBe(200);
    res.client.close();
    const bad = await exchange(`GET http://${"h".repeat(255)}:1/ HTTP/1.1\r\nX: \0\r\n\r\n`);
    expect(bad.status).toBe(400);
    await proxy.waitForLog((r) => r.method.startsWith("MMM"));
    for (const record of proxy.logs) {
      const parsed = LogRecord.safeParse(record);
      expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    }
  });

  it("toRecord clips every text field to the master's limits", () => {
    const long = "\u{1F600}".repeat(3000);
    const record = toRecord(
      {
        requestId: long,
        startedAt: Date.now(),
        startedMono: performance.now(),
        client: long,
        user: long,
        method: long,
        scheme: "http",
        host: long,
        port: 80,
        path: long,
        rule: long,
      },
      403,
      "block",
      1,
      2,
    );
    const parsed = LogRecord.safeParse(record);
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    // Never half a surrogate pair at the cut.
    expect(record.user).toMatch(/^(\u{1F600})+$/u);
  });
});
