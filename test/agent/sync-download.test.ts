// Bundle downloads that go wrong on a real socket, and bundles refused for good: a cut-short body is
// a network failure to retry (never a NACK), and a refused bundle is not fetched and compiled again.
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { compileWithEngine } from "../../agent/sync/compile";
import type { CompileResult } from "../../agent/sync/types";
import { makeBundle } from "./fakes/seeds";
import { nodeClient, setup } from "./fakes/sync";

type Mode = "full" | "short" | "reset" | "stall" | "garbage";

/** A raw HTTP/1.1 master on loopback whose policy answers follow `modes`, one per request. */
async function rawMaster(body: string, modes: Mode[]) {
  const sockets = new Set<net.Socket>();
  const statuses: string[] = [];
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let head = "";
    socket.on("data", (data) => {
      head += data.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      const path = head.split(" ")[1] ?? "";
      head = "";
      if (path.includes("/status")) {
        statuses.push(path);
        socket.end("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        return;
      }
      const mode = modes.shift() ?? "full";
      const bytes = Buffer.from(body);
      const half = bytes.subarray(0, bytes.length >> 1);
      if (mode === "full") {
        socket.end(
          `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${bytes.length}\r\nConnection: close\r\n\r\n${body}`,
        );
      } else if (mode === "short") {
        socket.write(
          `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${bytes.length}\r\nConnection: close\r\n\r\n`,
        );
        socket.end(half);
      } else if (mode === "reset") {
        socket.write(
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        socket.write(`${half.length.toString(16)}\r\n`);
        socket.write(half);
        socket.write("\r\n", () => socket.destroy());
      } else if (mode === "garbage") {
        // Chunked, ended properly, but the JSON stops half-way (a proxy cutting the body short).
        socket.write(
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        socket.end(`${half.length.toString(16)}\r\n${half.toString("latin1")}\r\n0\r\n\r\n`);
      } else {
        socket.write(
          `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${bytes.length}\r\n\r\n`,
        );
        socket.write(half);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    url,
    statuses,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

let closeMaster: (() => Promise<void>) | null = null;
afterEach(async () => {
  await closeMaster?.();
  closeMaster = null;
});

const bigPolicy = {
  lists: { big: { domains: Array.from({ length: 20_000 }, (_, i) => `host-${i}.example.com`) } },
  rules: [{ id: "big", action: "block", match: { domains: ["@big"] } }],
  defaultAction: "allow",
};

describe("bundle download over a real socket", () => {
  it("a body cut short, reset mid-way or stalled is a network failure, not a malformed bundle", async () => {
    const t = await setup();
    const bundle = await makeBundle(t.key, 1, bigPolicy);
    const master = await rawMaster(JSON.stringify(bundle), ["short", "reset", "stall"]);
    closeMaster = master.close;
    const client = nodeClient(globalThis.fetch, master.url);
    const call = { etag: null, waitSeconds: 0 };
    // Node's fetch refuses a short Content-Length body itself; Bun's hands it over, and the agent checks.
    for (const expected of [/truncated: \d+ of \d+ bytes|LENGTH_MISMATCH/, /interrupted/]) {
      const result = await client.pollPolicy(call);
      expect(result).toMatchObject({
        ok: false,
        status: 0,
        code: "DOWNLOAD_INCOMPLETE",
        message: expect.stringMatching(expected),
      });
    }
    const stalled = await client.pollPolicy({ ...call, signal: AbortSignal.timeout(300) });
    expect(stalled).toMatchObject({
      ok: false,
      status: 0,
      code: "DOWNLOAD_INCOMPLETE",
      message: expect.stringMatching(/timed out/),
    });
    const whole = await client.pollPolicy(call);
    expect(whole).toMatchObject({ ok: true, kind: "bundle" });
    if (whole.ok && whole.kind === "bundle")
      expect(JSON.parse(new TextDecoder().decode(whole.bytes)).version).toBe(1);
  });

  it("the sync loop retries a truncated download with backoff, never NACKs it, then applies the whole bundle", async () => {
    const bundleKey = await setup();
    const bundle = await makeBundle(bundleKey.key, 1, bigPolicy);
    const master = await rawMaster(JSON.stringify(bundle), ["short", "reset", "garbage"]);
    closeMaster = master.close;
    const t = await setup({ master: nodeClient(globalThis.fetch, master.url), compile: compileWithEngine });
    const signal = new AbortController().signal;
    // Cut short, reset mid-body, and ended properly but with half the JSON (a proxy cutting it off).
    for (let i = 0; i < 3; i++) expect(await t.loop.pollOnce(signal)).toBeGreaterThan(0);
    expect(t.events.types()).not.toContain("policy.rejected");
    expect(t.loop.snapshot()).toMatchObject({ lastRefusal: null, master: "unreachable" });
    expect(t.loop.snapshot().lastError).toMatch(/DOWNLOAD_INCOMPLETE/);
    await t.loop.pollOnce(signal);
    expect(t.driver.applied).toEqual([1]);
    expect(t.loop.snapshot()).toMatchObject({ appliedVersion: 1, lastRefusal: null });
  });
});

describe("a refused bundle is not fetched and compiled again", () => {
  const counting = () => {
    const calls: unknown[] = [];
    const compile = (policy: unknown): CompileResult => {
      calls.push(policy);
      return compileWithEngine(policy);
    };
    return { calls, compile };
  };
  const signal = new AbortController().signal;

  it("a bundle that verifies but cannot be compiled is waited on by hash for good, compiled once", async () => {
    const { calls, compile } = counting();
    const t = await setup({ compile, refusedRetryMs: 5 * 60_000 });
    const bad = await makeBundle(t.key, 2, {
      rules: [{ id: "x", action: "explode" }],
      defaultAction: "allow",
    });
    t.master.current = bad;
    await t.loop.pollOnce(signal);
    expect(calls).toHaveLength(1);
    expect(t.events.types().filter((type) => type === "policy.rejected")).toHaveLength(1);
    for (let hour = 0; hour < 6; hour++) {
      t.clock.t += 60 * 60_000;
      await t.loop.pollOnce(signal);
    }
    expect(t.master.polls.slice(1).map((p) => p.etag)).toEqual(Array(6).fill(bad.hash));
    expect(calls).toHaveLength(1);
    // A master that ignores If-None-Match and sends it again: no second compile, no second NACK.
    t.master.queue.push(Response.json(bad, { headers: { etag: `"${bad.hash}"` } }));
    await t.loop.pollOnce(signal);
    expect(calls).toHaveLength(1);
    expect(t.events.types().filter((type) => type === "policy.rejected")).toHaveLength(1);
    // A new publish is a new hash: fetched and applied.
    t.master.current = await makeBundle(t.key, 3, { rules: [], defaultAction: "allow" });
    await t.loop.pollOnce(signal);
    expect(t.driver.applied).toEqual([3]);
  });

  it("a bundle failing its hash is asked for once more (damage in transit), then waited on for good", async () => {
    const t = await setup({ refusedRetryMs: 60_000 });
    const good = await makeBundle(t.key, 1, { defaultAction: "allow" });
    const damaged = { ...good, policy: { defaultAction: "block" } };
    t.master.current = damaged as typeof good;
    await t.loop.pollOnce(signal);
    t.clock.t += 61_000;
    await t.loop.pollOnce(signal);
    expect(t.master.polls.map((p) => p.etag)).toEqual([null, null]);
    for (let i = 0; i < 5; i++) {
      t.clock.t += 61_000;
      await t.loop.pollOnce(signal);
    }
    expect(t.master.polls.slice(2).map((p) => p.etag)).toEqual(Array(5).fill(good.hash));
    expect(t.events.types().filter((type) => type === "policy.rejected")).toHaveLength(2);
    expect(t.driver.applied).toEqual([]);
  });
});
