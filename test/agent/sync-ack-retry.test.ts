// An ACK whose pooled keep-alive connection the master closed while idle (ECONNRESET at once) is
// sent again at once, not after the next long poll (the fleet bench saw ~10 % of a publish's ACKs
// wait ~30 s for this).
import { describe, expect, it } from "vitest";
import type { FetchLike } from "../../agent/ports";
import type { StatusReport } from "../../protocol/wire";
import { MASTER } from "./fakes/master";
import { makeBundle } from "./fakes/seeds";
import { type Harness, nodeClient, runUntil, setup } from "./fakes/sync";

const same = { rules: [], defaultAction: "allow" };

/** Fails the first `failAcks` ACKs of v1 with `fail`; returns how many polls came before the ACK landed. */
async function pollsBeforeAck(failAcks: number, fail: (t: Harness) => never) {
  let harness: Harness | null = null;
  let left = failAcks;
  const fetch: FetchLike = async (url, init) => {
    const report = url.endsWith("/status") ? (JSON.parse(String(init?.body)) as StatusReport) : null;
    if (report?.appliedVersion === 1 && left-- > 0) fail(harness!);
    return harness!.master.fetch(url, init);
  };
  const t = await setup({ master: nodeClient(fetch, MASTER, () => harness!.clock.now()) });
  harness = t;
  t.master.current = await makeBundle(t.key, 1, same);
  let polls = -1;
  await runUntil(t, () => {
    const acked = t.master.statuses.some((s) => s.appliedVersion === 1 && s.state === "applied");
    if (acked && polls < 0) polls = t.master.polls.length;
    return acked;
  });
  return { t, polls };
}

describe("ACK delivery", () => {
  it("sends an ACK again at once when it failed fast on a closed connection", async () => {
    const { t, polls } = await pollsBeforeAck(2, () => {
      throw new TypeError("The socket connection was closed unexpectedly");
    });
    // The poll that brought v1, and no long poll before the ACK.
    expect(polls).toBe(1);
    expect(t.events.types()).not.toContain("status.failed");
  });

  it("after the quick tries all failed, holds the next poll 5 s, not 25 s, and the ACK goes then", async () => {
    // Four fast failures: the first try and its three quick retries (paused < 100, 200, 400 ms).
    const { t, polls } = await pollsBeforeAck(4, () => {
      throw new TypeError("The socket connection was closed unexpectedly");
    });
    expect(t.events.types()).toContain("status.failed");
    // The poll that brought v1, then one short poll before the ACK went through.
    expect(polls).toBe(2);
    expect(t.master.polls[1]!.url).toContain("wait=5");
    const pauses = t.clock.sleeps.slice(0, 3);
    expect(pauses.every((ms, i) => ms < 100 * 2 ** i)).toBe(true);
    // Once the ACK is in, the loop holds full long polls again.
    await runUntil(t, () => t.master.polls.length >= 3);
    expect(t.master.polls[2]!.url).toContain("wait=25");
  });

  it("leaves a slow failure (a timeout) to the next cycle, as before", async () => {
    const { t, polls } = await pollsBeforeAck(1, (h) => {
      h.clock.t += 16_000;
      throw new DOMException("timed out", "TimeoutError");
    });
    expect(t.events.types()).toContain("status.failed");
    expect(polls).toBe(2);
  });
});
