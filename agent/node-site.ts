// The node's site as the master asserts it (protocol/site.ts): read from site.json at start,
// replaced by a newer signed assertion from a poll answer, and handed to every compiled policy
// (CompiledPolicy.setSite) so site rules apply on this node only. See docs/fleet.md.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseSiteHeader, SITE_HEADER, SiteAssertion, verifySiteAssertion } from "../protocol/site";
import type { MasterKey } from "../protocol/wire";
import type { EventLogger, FetchLike } from "./ports";
import type { ActivePolicy, ProxyDriver } from "./proxy/types";
import { writeFileAtomic } from "./state/atomic-write";

export const SITE_FILE = "site.json";

export async function readSiteFile(stateDir: string): Promise<SiteAssertion | null> {
  try {
    const parsed = SiteAssertion.safeParse(
      JSON.parse(await readFile(path.join(stateDir, SITE_FILE), "utf8")),
    );
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export function writeSiteFile(stateDir: string, assertion: SiteAssertion): Promise<void> {
  return writeFileAtomic(path.join(stateDir, SITE_FILE), `${JSON.stringify(assertion, null, 2)}\n`, {
    mode: 0o644,
  });
}

export class NodeSite {
  private active: ActivePolicy | null = null;

  constructor(
    private current: SiteAssertion | null,
    private readonly o: {
      nodeId: string;
      stateDir: string;
      /** The keys bundles are trusted with now (they move on a key rotation). */
      trusted: () => Promise<MasterKey[]>;
      events: EventLogger;
    },
  ) {}

  get site(): string | null {
    return this.current?.site ?? null;
  }

  /** The driver, with the node's site set on each policy before it takes effect. */
  wrapDriver(driver: ProxyDriver): ProxyDriver {
    return {
      kind: driver.kind,
      start: () => driver.start(),
      stop: (deadline) => driver.stop(deadline),
      listenAddress: () => driver.listenAddress(),
      version: () => driver.version(),
      // The connection gauges read through whichever driver object they were handed.
      activity: driver.activity?.bind(driver),
      applyPolicy: async (policy) => {
        policy?.compiled.setSite(this.site);
        await driver.applyPolicy(policy);
        this.active = policy;
      },
    };
  }

  /** `fetch`, reading the signed site assertion off every answer that carries one. */
  wrapFetch(fetch: FetchLike): FetchLike {
    return async (url, init) => {
      const response = await fetch(url, init);
      const header = response.headers.get(SITE_HEADER);
      if (header) await this.consider(header);
      return response;
    };
  }

  private async consider(header: string): Promise<void> {
    const assertion = parseSiteHeader(header);
    if (!assertion) return;
    const current = this.current;
    if (current && current.since === assertion.since && current.site === assertion.site) return;
    // An older assignment replayed at us is ignored: the site only moves forward in time.
    if (current && assertion.since < current.since) return;
    if (!(await verifySiteAssertion(assertion, this.o.nodeId, await this.o.trusted()))) {
      this.o.events.emit("site.assertion_refused", { level: "warn", site: assertion.site });
      return;
    }
    const before = this.site;
    this.current = assertion;
    try {
      await writeSiteFile(this.o.stateDir, assertion);
    } catch (error) {
      this.o.events.emit("site.save_failed", { level: "error", error: (error as Error).message });
    }
    if (before !== assertion.site) {
      // The running policy is judged for the new site from the next request on.
      this.active?.compiled.setSite(assertion.site);
      this.o.events.emit("site.changed", { from: before, to: assertion.site });
    }
  }
}
