// How `run` builds the Squid driver from config.json (one import for run.ts).

import type { EventLogger } from "../../ports";
import type { DiskSpool } from "../../spool/disk-spool";
import type { NodeConfig } from "../../state/schemas";
import type { ProxyDriver } from "../types";
import { createSquidDriver } from "./index";
import { resolveSquidSettings } from "./settings";

export { compileForSquid } from "./support";

export function squidDriverFor(
  config: NodeConfig,
  stateDir: string,
  sink: DiskSpool,
  events: EventLogger,
): ProxyDriver {
  return createSquidDriver({
    settings: resolveSquidSettings(config.squid, stateDir),
    listen: config.listen,
    sink,
    durable: () => sink.flush(),
    events,
  });
}
