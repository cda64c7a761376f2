// How `run` builds the Squid driver from config.json (one import for run.ts).

import type { AccessLogSink, EventLogger } from "../../ports";
import type { DiskSpool } from "../../spool/disk-spool";
import type { NodeConfig } from "../../state/schemas";
import type { ProxyDriver } from "../types";
import { createSquidDriver } from "./index";
import { resolveSquidSettings } from "./settings";

export { compileForSquid } from "./support";

export function squidDriverFor(
  config: NodeConfig,
  stateDir: string,
  spool: DiskSpool,
  events: EventLogger,
  /** What records go through on their way to the spool (run: the metrics' counting sink). */
  sink: AccessLogSink = spool,
): ProxyDriver {
  return createSquidDriver({
    settings: resolveSquidSettings(config.squid, stateDir),
    listen: config.listen,
    sink,
    durable: () => spool.flush(),
    events,
  });
}
