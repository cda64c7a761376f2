// Runs in a worker thread (agent/sync/bundle-worker.ts starts it): the part of applying a bundle
// that grows with its size — JSON.parse, the canonical hash, validation, the domain table — so the
// proxy's event loop only receives typed arrays (transferred, not copied) and a policy without lists.
import { compileDomains } from "../../protocol/policy/compile";
import { validatePolicy } from "../../protocol/policy/schema";
import type { WorkerReply, WorkerRequest } from "./bundle-worker";
import { describeIssues, withoutListDomains } from "./compile";
import { headOf, openBundle, parseBundleBytes } from "./prepare";

declare const self: {
  onmessage: ((event: { data: WorkerRequest }) => void) | null;
  postMessage(message: WorkerReply, transfer?: ArrayBuffer[]): void;
};

async function handle(request: WorkerRequest): Promise<void> {
  const bytes = new Uint8Array(request.bytes);
  const parsed = parseBundleBytes(bytes);
  if (!parsed.ok) return self.postMessage({ id: request.id, result: parsed });
  const opened = await openBundle(parsed.data, request.trusted, request.applied);
  if (!opened.ok) return self.postMessage({ id: request.id, result: opened });
  const { bundle } = opened;
  const refuse = (error: string) =>
    self.postMessage({
      id: request.id,
      result: {
        ok: false,
        why: "final",
        reason: `bundle v${bundle.version} cannot be applied: ${error}`,
        hash: bundle.hash,
      },
    });
  const validated = validatePolicy(bundle.policy);
  if (!validated.ok) return refuse(describeIssues(validated.issues));
  let domains: ReturnType<typeof compileDomains>;
  try {
    domains = compileDomains(validated.policy);
  } catch (error) {
    return refuse(`policy does not compile: ${(error as Error).message}`);
  }
  const parts = domains.table.toParts();
  self.postMessage(
    {
      id: request.id,
      result: {
        ok: true,
        head: headOf(bundle),
        position: opened.position,
        kid: opened.kid,
        nextKey: opened.nextKey,
        policy: withoutListDomains(validated.policy),
        domains: { parts, setNames: domains.setNames, ruleSets: domains.ruleSets },
        bytes: request.bytes,
      },
    },
    [parts.slots.buffer as ArrayBuffer, parts.filter.buffer as ArrayBuffer, request.bytes],
  );
}

self.onmessage = (event) => {
  handle(event.data).catch((error: unknown) =>
    self.postMessage({
      id: event.data.id,
      result: { ok: false, why: "final", reason: `bundle cannot be applied: ${String(error)}`, hash: null },
    }),
  );
};
