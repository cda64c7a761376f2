import { compilePolicy } from "../../protocol/policy/compile";
import type { Policy } from "../../protocol/policy/schema";
import type { CompiledPolicy, Decision, RequestFacts } from "../../protocol/policy/types";
import { policyHash } from "../../protocol/signing";
import type { Db } from "../db/client";
import { AppError } from "../errors";
import { getVersion, latestHead, parsePolicy } from "./policy";

export interface SimulatedRequest {
  client: string;
  url: string;
  method?: string;
  user?: string;
  groups?: string[];
  at?: number;
  /** The node's site; rules with match.sites never match without one. */
  site?: string;
}

// Compiling a large list costs a second or so; a version's compiled form never changes.
const compiled = new Map<string, CompiledPolicy>();

async function compiledFor(policy: Policy): Promise<CompiledPolicy> {
  const hash = await policyHash(policy);
  let hit = compiled.get(hash);
  if (!hit) {
    hit = compilePolicy(policy);
    compiled.set(hash, hit);
    if (compiled.size > 2) compiled.delete(compiled.keys().next().value!);
  }
  return hit;
}

/** Turns the described request into the facts a proxy would see: https URLs become CONNECT tunnels. */
export function factsFor(request: SimulatedRequest): RequestFacts {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    throw new AppError("VALIDATION_FAILED", `request.url: not a URL: ${request.url}`, [
      { path: "request.url", message: "not an absolute http(s) URL" },
    ]);
  }
  const tunnel = url.protocol === "https:";
  if (!tunnel && url.protocol !== "http:") {
    throw new AppError("VALIDATION_FAILED", "request.url: only http and https URLs pass a forward proxy", [
      { path: "request.url", message: "scheme must be http or https" },
    ]);
  }
  return {
    client: request.client,
    user: request.user,
    groups: request.groups ?? [],
    method: tunnel ? "CONNECT" : (request.method ?? "GET").toUpperCase(),
    scheme: tunnel ? "connect" : "http",
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port ? Number(url.port) : tunnel ? 443 : 80,
    path: tunnel ? undefined : `${url.pathname}${url.search}`,
    now: request.at ?? Date.now(),
  };
}

export async function simulateRequest(
  policy: Policy,
  request: SimulatedRequest,
): Promise<Decision & { facts: RequestFacts; site: string | null }> {
  const facts = factsFor(request);
  const engine = await compiledFor(policy);
  // Set and used with no await between: the cached engine is shared by this isolate's requests.
  engine.setSite(request.site ?? null);
  const decision = engine.evaluate(facts, { trace: true });
  return { ...decision, facts, site: request.site ?? null };
}

export interface SimulateInput {
  /** A draft policy; without one, `version` or else the latest published version. */
  policy?: unknown;
  version?: number | undefined;
  request: SimulatedRequest;
}

/** POST /api/v1/policy/simulate: the decision, and the version it was judged against (null for a draft). */
export async function simulateAgainst({ db, input }: { db: Db; input: SimulateInput }) {
  let policy = input.policy;
  let version: number | null = null;
  if (policy === undefined) {
    version = input.version ?? (await latestHead(db))?.version ?? null;
    if (version === null)
      throw new AppError("NOT_FOUND", "no policy has been published yet; send a draft as `policy`");
    policy = (await getVersion(db, version)).policy;
  }
  return { version, ...(await simulateRequest(parsePolicy(policy), input.request)) };
}
