// Fakes for driving the sync loop in Node: a signing fake master, a manual clock, a recording
// driver and an in-memory store that share one ordered log of effects.

import type { ActivePolicy, EventLogger, ProxyDriver } from "../../agent/proxy/types";
import { SyncLoop } from "../../agent/sync/loop";
import type { Clock, CompileResult, FetchLike, SyncOptions, SyncStore } from "../../agent/sync/types";
import { DEFAULT_DESTINATIONS } from "../../protocol/policy/destinations";
import type { CompiledPolicy } from "../../protocol/policy/types";
import {
  importSigningKey,
  type NextKey,
  policyHash,
  type SigningKey,
  signBundle,
  signBundleV2,
} from "../../protocol/signing";
import type { MasterKey, PolicyBundle, StatusReport } from "../../protocol/wire";

export const MASTER = "https://master.test";
export const SEED = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
export const OTHER_SEED = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

export async function signingKey(seed = SEED): Promise<SigningKey> {
  return importSigningKey(seed);
}

export async function makeBundle(
  key: SigningKey,
  version: number,
  policy: Record<string, unknown>,
): Promise<PolicyBundle> {
  const hash = await policyHash(policy);
  const issuedAt = new Date(1_700_000_000_000 + version * 1000).toISOString();
  return {
    version,
    hash,
    issuedAt,
    policy,
    signature: { kid: key.kid, sig: await signBundle(key, version, issuedAt, hash) },
  };
}

/** A bundle as the master signs it since v2: both signatures, the series and an optional next key. */
export async function makeBundleV2(
  key: SigningKey,
  version: number,
  policy: Record<string, unknown>,
  options: { generation?: number; nextKey?: SigningKey } = {},
): Promise<PolicyBundle> {
  const base = await makeBundle(key, version, policy);
  const generation = options.generation ?? 0;
  const nextKey: NextKey | null = options.nextKey
    ? { kid: options.nextKey.kid, publicKey: options.nextKey.publicKey }
    : null;
  const sig = await signBundleV2(key, {
    generation,
    version,
    issuedAt: base.issuedAt,
    hash: base.hash,
    nextKey,
  });
  return {
    ...base,
    generation,
    ...(nextKey ? { nextKey: { ...nextKey, alg: "Ed25519" as const } } : {}),
    signatureV2: { kid: key.kid, sig },
  };
}

export class ManualClock implements Clock {
  readonly sleeps: number[] = [];
  constructor(
    public t = 1_700_000_000_000,
    private readonly onSleep?: (ms: number) => void,
  ) {}
  now(): number {
    return this.t;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return;
    this.sleeps.push(ms);
    this.t += ms;
    this.onSleep?.(ms);
  }
}

export type Step = string;

export class RecordingDriver implements ProxyDriver {
  readonly kind = "builtin" as const;
  readonly applied: (number | null)[] = [];
  failNext = false;
  constructor(private readonly log: Step[]) {}
  async start(): Promise<void> {}
  async applyPolicy(policy: ActivePolicy | null): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error("driver broke");
    }
    this.applied.push(policy?.version ?? null);
    this.log.push(policy ? `apply v${policy.version}` : "apply null");
  }
  async stop(): Promise<void> {}
  listenAddress(): string {
    return "127.0.0.1:3128";
  }
  version(): string {
    return "builtin-test";
  }
}

export class MemoryStore implements SyncStore {
  saved: PolicyBundle[] = [];
  keys: { masterKey: MasterKey; nextMasterKey?: MasterKey }[] = [];
  failSave = false;
  constructor(
    private readonly log: Step[],
    public cached: unknown | null = null,
  ) {}
  async loadLastGood(): Promise<unknown | null> {
    return this.cached === null ? null : structuredClone(this.cached);
  }
  async saveLastGood(bundle: PolicyBundle): Promise<void> {
    if (this.failSave) throw new Error("disk full");
    this.saved.push(bundle);
    this.cached = structuredClone(bundle);
    this.log.push(`save v${bundle.version}`);
  }
  async saveMasterKeys(keys: { masterKey: MasterKey; nextMasterKey?: MasterKey }): Promise<void> {
    this.keys.push(keys);
  }
}

export class RecordingEvents implements EventLogger {
  readonly events: { type: string; fields: Record<string, unknown> }[] = [];
  emit(type: string, fields: Record<string, unknown> = {}): void {
    this.events.push({ type, fields });
  }
  types(): string[] {
    return this.events.map((e) => e.type);
  }
}

type Reply = Response | Error | ((url: string, init?: RequestInit) => Response | Promise<Response>);

/** A master that serves `current` with ETag semantics, unless a queued reply overrides the next call. */
export class FakeMaster {
  current: PolicyBundle | null = null;
  readonly polls: { url: string; etag: string | null; userAgent: string | null }[] = [];
  readonly statuses: StatusReport[] = [];
  readonly statusTimes: number[] = [];
  readonly queue: Reply[] = [];
  /** How long a "nothing new" poll is held, like the real long poll (advances the manual clock). */
  holdMs = 0;
  /** Called after every request; tests stop the loop from here. */
  onRequest: () => void = () => {};
  constructor(
    private readonly log: Step[],
    private readonly clock: ManualClock,
  ) {}

  readonly fetch: FetchLike = async (url, init) => {
    try {
      return await this.answer(url, init);
    } finally {
      this.onRequest();
    }
  };

  private async answer(url: string, init?: RequestInit): Promise<Response> {
    // Queued replies stand in for policy polls only; status reports always reach the fake.
    const next = url.includes("/policy") ? this.queue.shift() : undefined;
    if (next instanceof Error) throw next;
    if (next instanceof Response) return next;
    if (next) return next(url, init);
    const headers = new Headers(init?.headers);
    if (url.includes("/policy")) {
      const etag = headers.get("if-none-match")?.replace(/"/g, "") ?? null;
      this.polls.push({ url, etag, userAgent: headers.get("user-agent") });
      if (!this.current || this.current.hash === etag) {
        this.clock.t += this.holdMs;
        return new Response(null, { status: 304 });
      }
      return Response.json(this.current, { headers: { etag: `"${this.current.hash}"` } });
    }
    if (url.endsWith("/status")) {
      const report = JSON.parse(String(init?.body)) as StatusReport;
      this.statuses.push(report);
      this.statusTimes.push(this.clock.now());
      this.log.push(`status ${report.state} v${report.appliedVersion}`);
      return new Response(null, { status: 204 });
    }
    return new Response("not found", { status: 404 });
  }
}

export function errorReply(status: number, code: string, headers: Record<string, string> = {}): Response {
  return Response.json(
    { error: { code, message: code.toLowerCase(), requestId: "req_test" } },
    { status, headers },
  );
}

const fakeCompiled: CompiledPolicy = {
  authRequired: false,
  realm: "Fleetgate",
  includeQuery: false,
  blockPage: { title: "", body: "" },
  destinations: DEFAULT_DESTINATIONS,
  nodeSite: null,
  setSite: () => undefined,
  clientAllowed: () => true,
  evaluate: () => ({ action: "allow", reason: "default" }),
  verifyCredentials: async () => null,
};

/** Accepts any policy except one carrying `invalid: true`, standing in for the policy engine. */
export function fakeCompile(policy: unknown): CompileResult {
  if ((policy as { invalid?: boolean }).invalid)
    return { ok: false, error: "rules.0.action: unknown action" };
  return { ok: true, compiled: fakeCompiled };
}

export async function setup(overrides: Partial<SyncOptions> = {}, cached: unknown | null = null) {
  const log: Step[] = [];
  const key = await signingKey();
  const clock = new ManualClock();
  const master = new FakeMaster(log, clock);
  const driver = new RecordingDriver(log);
  const store = new MemoryStore(log, cached);
  const events = new RecordingEvents();
  const options: SyncOptions = {
    masterUrl: MASTER,
    nodeToken: "fgn_token",
    masterKey: { kid: key.kid, alg: "Ed25519", publicKey: key.publicKey },
    agentVersion: "0.1.0-test",
    pollWaitSeconds: 25,
    fetch: master.fetch,
    clock,
    random: () => 0.5,
    store,
    driver,
    events,
    compile: fakeCompile,
    ...overrides,
  };
  const loop = new SyncLoop(options);
  return { log, key, clock, master, driver, store, events, loop, options };
}

export type Harness = Awaited<ReturnType<typeof setup>>;

/** Runs the loop until `done` holds after a request or a sleep (or a safety cap), then stops it. */
export async function runUntil(t: Harness, done: () => boolean, maxSteps = 1_000): Promise<void> {
  const stop = new AbortController();
  let steps = 0;
  const check = () => {
    if (done() || ++steps >= maxSteps) stop.abort();
  };
  t.master.onRequest = check;
  const sleep = t.clock.sleep.bind(t.clock);
  t.clock.sleep = async (ms, signal) => {
    await sleep(ms, signal);
    check();
  };
  await t.loop.run(stop.signal);
  t.master.onRequest = () => {};
  t.clock.sleep = sleep;
}

/**
 * A fake clock with real concurrency: `sleep` parks until the test moves time past its deadline with
 * `advance`, so a long poll and a report sent beside it interleave as they would on a real clock.
 */
export class TimerClock implements Clock {
  private timers: { at: number; seq: number; fire: () => void }[] = [];
  private seq = 0;
  constructor(public t = 1_700_000_000_000) {}
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = {
        at: this.t + Math.max(0, ms),
        seq: this.seq++,
        fire: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.timers = this.timers.filter((t) => t !== timer);
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.timers.push(timer);
    });
  }
  /** Moves time forward by `ms`, firing due timers in order and letting their work run in between. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await settle();
    for (;;) {
      const next = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.t = Math.max(this.t, next.at);
      next.fire();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

/** Lets pending promise chains (fetch bodies, timers' continuations) run to their next wait. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}
