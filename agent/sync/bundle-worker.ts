// The sync loop's prepare step on a worker thread (Bun's Worker; Node's worker_threads cannot load
// TypeScript, so Node tests use prepareInThread). Measured with a 1M-domain policy: the event loop
// stalls for the whole compile in-thread, for a few ms with the worker (docs/agent.md).
import { compilePolicy } from "../../protocol/policy/compile";
import { DomainTable, type DomainTableParts } from "../../protocol/policy/domain-table";
import type { Policy } from "../../protocol/policy/schema";
import type { NextKey } from "../../protocol/signing";
import type { MasterKey } from "../../protocol/wire";
import type { BundleHead, Position, PrepareBundle, Prepared, Unusable } from "./prepare";

export interface WorkerRequest {
  id: number;
  bytes: ArrayBuffer;
  trusted: readonly MasterKey[];
  applied: Position | null;
}

export interface WorkerReady {
  ok: true;
  head: BundleHead;
  position: Position;
  kid: string;
  nextKey: NextKey | null;
  policy: Policy;
  domains: { parts: DomainTableParts; setNames: string[]; ruleSets: (Int32Array | null)[] };
  bytes: ArrayBuffer;
}

export interface WorkerReply {
  id: number;
  result: WorkerReady | Unusable;
}

interface WorkerLike {
  postMessage(message: WorkerRequest, transfer: ArrayBuffer[]): void;
  addEventListener(type: "message", listener: (event: { data: WorkerReply }) => void): void;
  addEventListener(type: "error", listener: (event: { message?: string }) => void): void;
  unref?(): void;
}

/**
 * A prepare step backed by one long-lived worker. A worker that fails (it could not load, or died)
 * answers nothing more: a request in flight comes back "incomplete" (the loop downloads it again,
 * its bytes went to the worker), and every later one runs on `fallback`.
 */
export function workerPrepare(
  worker: WorkerLike,
  fallback: PrepareBundle,
  onFailure: (message: string) => void = () => undefined,
): PrepareBundle {
  let nextId = 0;
  let failed = false;
  const waiting = new Map<number, (reply: WorkerReply["result"]) => void>();
  worker.addEventListener("message", (event) => {
    const resolve = waiting.get(event.data.id);
    waiting.delete(event.data.id);
    resolve?.(event.data.result);
  });
  worker.addEventListener("error", (event) => {
    const message = event.message ?? "error";
    if (!failed) onFailure(message);
    failed = true;
    for (const [id, resolve] of waiting) {
      waiting.delete(id);
      resolve({ ok: false, why: "incomplete", reason: `bundle worker failed: ${message}`, hash: null });
    }
  });
  worker.unref?.();
  return async (bytes, trusted, applied) => {
    if (failed) return fallback(bytes, trusted, applied);
    const id = ++nextId;
    // Moved, not copied (copying 30 MB costs the loop ~0.2 s on a busy machine); a view into a
    // larger buffer is copied so nothing else is taken from the caller.
    const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
    const owned = (whole ? bytes.buffer : bytes.slice().buffer) as ArrayBuffer;
    const result = await new Promise<WorkerReply["result"]>((resolve) => {
      waiting.set(id, resolve);
      worker.postMessage({ id, bytes: owned, trusted: [...trusted], applied }, [owned]);
    });
    if (!result.ok) return result;
    return assemble(result);
  };
}

function assemble(ready: WorkerReady): Prepared {
  try {
    const { parts, setNames, ruleSets } = ready.domains;
    const compiled = compilePolicy(ready.policy, { table: DomainTable.fromParts(parts), setNames, ruleSets });
    return {
      ok: true,
      head: ready.head,
      position: ready.position,
      kid: ready.kid,
      nextKey: ready.nextKey,
      compiled,
      save: new Uint8Array(ready.bytes),
    };
  } catch (error) {
    return {
      ok: false,
      why: "final",
      reason: `bundle v${ready.head.version} cannot be applied: policy does not compile: ${(error as Error).message}`,
      hash: ready.head.hash,
    };
  }
}

/** The worker-backed prepare under Bun; null elsewhere (the loop then prepares in-thread). */
export function startBundleWorker(
  fallback: PrepareBundle,
  onFailure?: (message: string) => void,
): PrepareBundle | null {
  const WorkerCtor = (globalThis as { Worker?: new (url: string | URL) => WorkerLike }).Worker;
  if (typeof (globalThis as { Bun?: unknown }).Bun === "undefined" || !WorkerCtor) return null;
  // The entry is also an entry point of the compiled binary (scripts/build-agent.mjs), stored there
  // relative to agent/ (the entries' common root), beside the binary's own name.
  const compiled = import.meta.url.includes("/$bunfs/");
  const entry = new URL(
    compiled ? "./sync/bundle-worker-entry.ts" : "./bundle-worker-entry.ts",
    import.meta.url,
  );
  try {
    return workerPrepare(new WorkerCtor(entry), fallback, onFailure);
  } catch (error) {
    onFailure?.(String(error));
    return null;
  }
}
