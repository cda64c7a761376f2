// From the bytes of a downloaded bundle to a compiled policy, or the reason it cannot be used:
// parse, verify against the trusted keys, order against what is applied, compile. Runtime-neutral;
// `run` does the heavy part in a worker (bundle-worker.ts) so the proxy's event loop never waits on it.
import type { CompiledPolicy } from "../../protocol/policy/types";
import { type NextKey, verifyBundle } from "../../protocol/signing";
import { type MasterKey, PolicyBundle } from "../../protocol/wire";

export type CompileResult = { ok: true; compiled: CompiledPolicy } | { ok: false; error: string };

export type BundleHead = Omit<PolicyBundle, "policy">;

/** Where a bundle sits in the order nodes apply them: (generation, version), then its hash. */
export interface Position {
  generation: number;
  version: number;
  hash: string;
}

/**
 * Why a bundle cannot be used decides what the loop does next: "incomplete" is a download to retry
 * (never NACKed), "transit" (hash or signature wrong) is asked for once more, "final" never.
 */
export type Unusable = {
  ok: false;
  why: "incomplete" | "transit" | "final";
  reason: string;
  hash: string | null;
};

export interface Opened {
  ok: true;
  bundle: PolicyBundle;
  position: Position;
  /** The trusted key that signed it, and the next key it announced. */
  kid: string;
  nextKey: NextKey | null;
}

export type Prepared =
  | {
      ok: true;
      head: BundleHead;
      position: Position;
      kid: string;
      nextKey: NextKey | null;
      compiled: CompiledPolicy;
      /** What the store saves as last-good: the parsed bundle, or its bytes as downloaded. */
      save: PolicyBundle | Uint8Array;
    }
  | Unusable;

/** Runs the whole pipeline; the loop passes what it trusts and what it has applied. */
export type PrepareBundle = (
  bytes: Uint8Array,
  trusted: readonly MasterKey[],
  applied: Position | null,
) => Promise<Prepared>;

export function compareOrder(a: Position, b: Position): number {
  return a.generation !== b.generation ? a.generation - b.generation : a.version - b.version;
}

export function headOf(bundle: PolicyBundle): BundleHead {
  const { policy: _policy, ...head } = bundle;
  return head;
}

/** JSON text that does not parse is a download cut short (a whole bundle always parses). */
export function parseBundleBytes(bytes: Uint8Array): { ok: true; data: unknown } | Unusable {
  try {
    return { ok: true, data: JSON.parse(new TextDecoder().decode(bytes)) as unknown };
  } catch {
    return {
      ok: false,
      why: "incomplete",
      reason: `bundle download incomplete: ${bytes.length} bytes that are not whole JSON`,
      hash: null,
    };
  }
}

/** Schema, signature and order: everything but the compile. */
export async function openBundle(
  data: unknown,
  trusted: readonly MasterKey[],
  applied: Position | null,
): Promise<Opened | Unusable> {
  const parsed = PolicyBundle.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const hash =
      typeof (data as { hash?: unknown })?.hash === "string" ? (data as { hash: string }).hash : null;
    return {
      ok: false,
      why: "final",
      reason: `bundle is malformed at ${issue?.path.join(".") || "(root)"}`,
      hash,
    };
  }
  const bundle = parsed.data;
  const verified = await verifyBundle(bundle, trusted);
  if (!verified.ok) {
    return {
      ok: false,
      why: "transit",
      reason: `bundle v${bundle.version} refused: ${verified.reason}`,
      hash: bundle.hash,
    };
  }
  const position = { generation: verified.generation, version: bundle.version, hash: bundle.hash };
  if (applied) {
    const order = compareOrder(position, applied);
    const series = (p: Position) => (p.generation > 0 ? ` of series ${p.generation}` : "");
    if (order < 0) {
      return {
        ok: false,
        why: "final",
        reason:
          `bundle v${bundle.version}${series(position)} is older than the applied v${applied.version}${series(applied)}` +
          " (if the master's database was restored from a backup, start a new series: POST /api/v1/policy/series)",
        hash: bundle.hash,
      };
    }
    if (order === 0 && bundle.hash !== applied.hash) {
      return {
        ok: false,
        why: "final",
        reason: `bundle v${bundle.version} differs from the applied bundle of the same version`,
        hash: bundle.hash,
      };
    }
  }
  return { ok: true, bundle, position, kid: verified.kid, nextKey: verified.nextKey };
}

/** The pipeline on the calling thread: tests, the cache at start-up, and runtimes without workers. */
export function prepareInThread(
  compile: (policy: unknown) => CompileResult | Promise<CompileResult>,
): PrepareBundle {
  return async (bytes, trusted, applied) => {
    const parsed = parseBundleBytes(bytes);
    if (!parsed.ok) return parsed;
    return compileOpened(await openBundle(parsed.data, trusted, applied), compile);
  };
}

export async function compileOpened(
  opened: Opened | Unusable,
  compile: (policy: unknown) => CompileResult | Promise<CompileResult>,
): Promise<Prepared> {
  if (!opened.ok) return opened;
  const { bundle } = opened;
  const compiled = await compile(bundle.policy);
  if (!compiled.ok) {
    return {
      ok: false,
      why: "final",
      reason: `bundle v${bundle.version} cannot be applied: ${compiled.error}`,
      hash: bundle.hash,
    };
  }
  return {
    ok: true,
    head: headOf(bundle),
    position: opened.position,
    kid: opened.kid,
    nextKey: opened.nextKey,
    compiled: compiled.compiled,
    save: bundle,
  };
}
