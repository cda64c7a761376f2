// The sync loop on fakes: the fake master in-process, a manual clock, a recording driver and an
// in-memory store that share one ordered log of effects.
import { MasterClient } from "../../../agent/master/client";
import type { ActivePolicy, ProxyDriver } from "../../../agent/proxy/types";
import { SyncLoop } from "../../../agent/sync/loop";
import type { CompileResult, SyncOptions, SyncStore } from "../../../agent/sync/types";
import { DEFAULT_DESTINATIONS } from "../../../protocol/policy/destinations";
import type { CompiledPolicy } from "../../../protocol/policy/types";
import type { MasterKey, PolicyBundle } from "../../../protocol/wire";
import { FakeClock } from "./clock";
import { RecordingEvents } from "./events";
import { FakeMaster, MASTER } from "./master";
import { signingKey } from "./seeds";

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

/** The agent's master client for a test node (token fgn_token), on any fetch. */
export function nodeClient(fetch: FakeMaster["fetch"], masterUrl = MASTER, now?: () => number): MasterClient {
  return new MasterClient({ fetch, masterUrl, nodeToken: "fgn_token", agentVersion: "0.1.0-test", now });
}

export async function setup(overrides: Partial<SyncOptions> = {}, cached: unknown | null = null) {
  const log: Step[] = [];
  const key = await signingKey();
  const clock = new FakeClock("manual");
  const master = new FakeMaster({ log, clock });
  const driver = new RecordingDriver(log);
  const store = new MemoryStore(log, cached);
  const events = new RecordingEvents();
  const options: SyncOptions = {
    master: nodeClient(master.fetch, MASTER, () => clock.now()),
    masterKey: { kid: key.kid, alg: "Ed25519", publicKey: key.publicKey },
    pollWaitSeconds: 25,
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
