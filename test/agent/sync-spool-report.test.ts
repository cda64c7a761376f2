// Spool figures reach the master promptly: a status report goes out beside the long poll when the
// backlog drains or a chunk is quarantined or records are dropped, at most one per 2 s, never while
// the master is away; every successful exchange tells the spool uploader (onMasterContact).
import { afterEach, describe, expect, it } from "vitest";
import type { FetchLike } from "../../agent/ports";
import { SyncLoop } from "../../agent/sync/loop";
import type { SpoolFigures, StatusReport } from "../../protocol/wire";
import { FakeClock } from "./fakes/clock";
import { RecordingEvents } from "./fakes/events";
import { MASTER } from "./fakes/master";
import { fakeCompile, MemoryStore, nodeClient, RecordingDriver } from "./fakes/sync";

const refused = () => Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });

function setupTimed() {
  const clock = new FakeClock("timer");
  const t0 = clock.now();
  const figures: SpoolFigures = {
    pendingChunks: 3,
    pendingBytes: 3_000,
    oldestPendingAt: new Date(t0).toISOString(),
    droppedRecords: 0,
    quarantinedChunks: 0,
  };
  const master = {
    down: false,
    polls: [] as number[],
    statuses: [] as { at: number; spool: SpoolFigures }[],
    statusAttemptsWhileDown: 0,
  };
  // Holds each poll for its `wait` on the fake clock, like the real long poll.
  const fetch: FetchLike = async (url, init) => {
    if (url.endsWith("/status")) {
      if (master.down) {
        master.statusAttemptsWhileDown++;
        throw refused();
      }
      const report = JSON.parse(String(init?.body)) as StatusReport;
      master.statuses.push({ at: clock.now(), spool: report.spool });
      return new Response(null, { status: 204 });
    }
    if (master.down) throw refused();
    master.polls.push(clock.now());
    const wait = Number(new URL(url).searchParams.get("wait"));
    if (wait > 0) await clock.sleep(wait * 1_000, init?.signal ?? undefined);
    if (master.down) throw refused();
    return new Response(null, { status: 304 });
  };
  let contacts = 0;
  const loop = new SyncLoop({
    master: nodeClient(fetch, MASTER, () => clock.now()),
    masterKey: { kid: "k", alg: "Ed25519", publicKey: "AAAA" },
    pollWaitSeconds: 25,
    clock,
    random: () => 0.5,
    store: new MemoryStore([]),
    driver: new RecordingDriver([]),
    events: new RecordingEvents(),
    compile: fakeCompile,
    spoolFigures: () => ({ ...figures }),
    onMasterContact: () => {
      contacts++;
    },
  });
  const stop = new AbortController();
  const running = loop.run(stop.signal);
  stopLoop = async () => {
    stop.abort();
    await clock.advance(0);
    await running;
  };
  return { clock, t0, figures, master, loop, contacts: () => contacts };
}

let stopLoop: (() => Promise<void>) | null = null;
afterEach(async () => {
  await stopLoop?.();
  stopLoop = null;
});

describe("sync loop: spool figures reach the master promptly", () => {
  it("reports a drained backlog at once, beside the long poll, not a minute later", async () => {
    const t = setupTimed();
    await t.clock.advance(1_000); // start-up heartbeat, the wait=0 poll, then the first long poll
    expect(t.master.statuses.map((s) => s.spool.pendingChunks)).toEqual([3]);
    expect(t.master.polls).toHaveLength(2);

    await t.clock.advance(4_000);
    t.figures.pendingChunks = 0;
    t.figures.pendingBytes = 0;
    t.figures.oldestPendingAt = null;
    t.loop.spoolChanged();
    await t.clock.advance(0);

    expect(t.master.statuses).toHaveLength(2);
    expect(t.master.statuses[1]).toEqual({
      at: t.t0 + 5_000,
      spool: expect.objectContaining({ pendingChunks: 0 }),
    });
    expect(t.master.polls).toHaveLength(2); // the long poll is still being held
  });

  it("sends at most one report per 2 s, with the newest figures", async () => {
    const t = setupTimed();
    await t.clock.advance(1_000);
    t.figures.quarantinedChunks = 1;
    t.loop.spoolChanged();
    await t.clock.advance(500);
    t.figures.droppedRecords = 5;
    t.loop.spoolChanged();
    t.loop.spoolChanged();
    await t.clock.advance(400);
    expect(t.master.statuses).toHaveLength(1); // 1.9 s after the start-up report: not yet

    await t.clock.advance(200);
    expect(t.master.statuses).toHaveLength(2);
    expect(t.master.statuses[1]!.at).toBe(t.t0 + 2_000);
    expect(t.master.statuses[1]!.spool).toMatchObject({ quarantinedChunks: 1, droppedRecords: 5 });

    // A change that lands right after a report waits out the interval, then goes too.
    t.figures.droppedRecords = 9;
    t.loop.spoolChanged();
    await t.clock.advance(1_000);
    expect(t.master.statuses).toHaveLength(2);
    await t.clock.advance(1_000);
    expect(t.master.statuses.map((s) => s.spool.droppedRecords)).toEqual([0, 5, 9]);
    expect(t.master.statuses[2]!.at).toBe(t.t0 + 4_000);
  });

  it("reports a spool that emptied when the master last saw unsealed records", async () => {
    const t = setupTimed();
    t.figures.pendingChunks = 0; // only records in a segment, no chunk yet
    await t.clock.advance(1_000);
    t.figures.pendingBytes = 0;
    t.figures.oldestPendingAt = null;
    t.loop.spoolChanged();
    await t.clock.advance(1_000);
    expect(t.master.statuses.map((s) => s.spool.pendingBytes)).toEqual([3_000, 0]);
  });

  it("leaves a growing backlog to the heartbeat", async () => {
    const t = setupTimed();
    await t.clock.advance(1_000);
    t.figures.pendingChunks = 7;
    t.figures.pendingBytes = 9_000;
    t.loop.spoolChanged();
    await t.clock.advance(20_000);
    expect(t.master.statuses).toHaveLength(1);
  });

  it("sends nothing while the master is away and the news as soon as it is back", async () => {
    const t = setupTimed();
    await t.clock.advance(1_000);
    t.master.down = true;
    await t.clock.advance(25_000); // the held poll fails: the loop backs off and asks again without holding
    t.figures.pendingChunks = 0;
    t.figures.quarantinedChunks = 2;
    t.loop.spoolChanged();
    await t.clock.advance(100);
    expect(t.master.statusAttemptsWhileDown).toBe(0);

    t.master.down = false;
    const back = t.clock.now();
    await t.clock.advance(2_000); // the backoff ends, the poll succeeds
    expect(t.master.statuses).toHaveLength(2);
    expect(t.master.statuses[1]!.spool).toMatchObject({ pendingChunks: 0, quarantinedChunks: 2 });
    expect(t.master.statuses[1]!.at - back).toBeLessThan(2_000);
  });

  it("tells the spool about every successful poll and status report, not about failures", async () => {
    const t = setupTimed();
    await t.clock.advance(0);
    expect(t.contacts()).toBe(2); // the start-up report (204) and the first poll (304)
    t.master.down = true;
    await t.clock.advance(3_000); // three failed polls
    expect(t.contacts()).toBe(2);
    t.master.down = false;
    await t.clock.advance(2_000);
    expect(t.contacts()).toBe(3);
  });
});
