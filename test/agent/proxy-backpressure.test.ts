// Backpressure on every write to a client: a client that pipelines requests and never reads its
// answers must stop being read from, so the proxy's memory stays flat. The proxy runs in its own
// Bun process (proxy-harness.ts); its RSS is read from /proc while 50 MB of requests are pushed.
// Without backpressure the refusal flood alone grew the proxy from 41 MB to 709 MB (issue 10).

import { readFileSync } from "node:fs";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_REFUSALS_IN_ROW } from "../../agent/proxy/builtin/client-session";
import { type Harness, makePolicy, type Origin, RawClient, startHarness, startOrigin } from "./proxy-helpers";

const FLOOD_BYTES = 50 * 1024 * 1024;
const RSS_BOUND_MB = 30;

let proxy: Harness;
let origin: Origin;
let served = 0;

beforeAll(async () => {
  const body = "x".repeat(4096);
  origin = await startOrigin((_req, res) => {
    served++;
    res.end(body);
  });
  proxy = await startHarness(
    makePolicy({ rules: [{ id: "no-blocked", action: "block", match: { domains: ["blocked.test"] } }] }),
  );
});

afterAll(async () => {
  proxy?.kill();
  await origin?.close();
});

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Writes FLOOD_BYTES of the pipelined request without reading anything back, for at most
 * `seconds`, sampling the proxy's RSS; stops early once the proxy has stopped taking bytes.
 */
async function flood(
  request: string,
  seconds: number,
): Promise<{ socket: net.Socket; baseMb: number; peakMb: number; accepted: number; closed: boolean }> {
  const baseMb = rssMb(proxy.pid);
  const socket = net.connect(proxy.port, "127.0.0.1");
  let closed = false;
  // Once the proxy closes the connection the socket drops its queue, so "taken" stops meaning
  // "what the proxy read": a closed flood is judged by RSS and records alone.
  socket.on("error", () => {
    closed = true;
  });
  socket.on("close", () => {
    closed = true;
  });
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.pause(); // never read
  const block = Buffer.from(request.repeat(Math.ceil((1024 * 1024) / request.length)));
  for (let sent = 0; sent < FLOOD_BYTES; sent += block.length) socket.write(block);
  let peakMb = baseMb;
  let lastWritten = -1;
  let still = 0;
  for (let t = 0; t < seconds * 10; t++) {
    await sleep(100);
    peakMb = Math.max(peakMb, rssMb(proxy.pid));
    // What the kernel took (bytesWritten counts the still-buffered bytes too): flat for 1.5 s
    // means the proxy stopped reading.
    const taken = socket.bytesWritten - socket.writableLength;
    if (taken === lastWritten) {
      if (++still >= 15) break;
    } else {
      still = 0;
      lastWritten = taken;
    }
  }
  return { socket, baseMb, peakMb, accepted: socket.bytesWritten - socket.writableLength, closed };
}

describe("a client that pipelines without reading", () => {
  it("gets refusals only as fast as it reads them: flat RSS, a bounded number of log records", async () => {
    const before = proxy.logs.length;
    const request = "GET http://blocked.test/ HTTP/1.1\r\nHost: blocked.test\r\n\r\n";
    const { socket, baseMb, peakMb, accepted, closed } = await flood(request, 20);
    const records = proxy.logs.length - before;
    console.log(
      `refusal flood: proxy RSS ${baseMb.toFixed(1)} -> peak ${peakMb.toFixed(1)} MB (+${(peakMb - baseMb).toFixed(1)}), ` +
        `${(accepted / 1e6).toFixed(1)} MB of requests taken, ${records} records`,
    );
    expect(peakMb - baseMb).toBeLessThan(RSS_BOUND_MB);
    // Either the proxy stopped reading, or it closed the connection after MAX_REFUSALS_IN_ROW.
    expect(closed || accepted < FLOOD_BYTES).toBe(true);
    expect(records).toBeLessThanOrEqual(MAX_REFUSALS_IN_ROW);
    socket.destroy();
  });

  it("gets forwarded answers only as fast as it reads them, and then all of them in order", async () => {
    const request = `GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`;
    const servedBefore = served;
    const { socket, baseMb, peakMb, accepted } = await flood(request, 20);
    const total = Math.floor(FLOOD_BYTES / request.length);
    console.log(
      `answer flood: proxy RSS ${baseMb.toFixed(1)} -> peak ${peakMb.toFixed(1)} MB (+${(peakMb - baseMb).toFixed(1)}), ` +
        `${(accepted / 1e6).toFixed(1)} MB of requests taken, ${served - servedBefore} of ${total} forwarded`,
    );
    expect(peakMb - baseMb).toBeLessThan(RSS_BOUND_MB);
    expect(served - servedBefore).toBeLessThan(total / 10);
    // Reading again, the answers keep coming, complete and in order.
    const servedPaused = served;
    const reader = RawClient.adopt(socket);
    for (let i = 0; i < 3 * servedPaused && served === servedPaused; i++) {
      const res = await reader.readResponse(10_000);
      expect(res.status).toBe(200);
      expect(res.body.length).toBe(4096);
    }
    expect(served).toBeGreaterThan(servedPaused);
    socket.destroy();
  });
});
