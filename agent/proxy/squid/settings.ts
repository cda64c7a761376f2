// The Squid driver's node-local settings: config.json's `squid` block (docs/squid.md, Settings).
// Never synced from the master; every key optional, the Debian paths by default.

import path from "node:path";
import { z } from "zod";

export const SquidConfig = z.strictObject({
  /** The squid binary (`squid -v`, `-k parse`, `-k reconfigure`, `-k rotate`). */
  binary: z.string().min(1).optional(),
  /** The main squid.conf; it must `include` the include file (directly or through a glob). */
  confPath: z.string().min(1).optional(),
  /** The one file the agent writes for Squid. */
  includePath: z.string().min(1).optional(),
  /** The access log the include adds (Fleetgate's logformat); the agent reads it into the spool. */
  accessLogPath: z.string().min(1).optional(),
  /** Unix socket the helpers ask (Squid's user must reach it: not under the 0750 state dir). */
  socketPath: z.string().min(1).optional(),
  /** Group that may connect to the socket: Squid's cache_effective_group (Debian: proxy). */
  socketGroup: z.string().min(1).optional(),
  /** Helper processes per kind and requests in flight per helper (Squid's concurrency=). */
  helperChildren: z.number().int().min(1).max(32).optional(),
  helperConcurrency: z.number().int().min(1).max(1000).optional(),
  /** The helper command line; default: this agent binary with `squid-helper`. */
  helperCommand: z.array(z.string().min(1)).min(1).optional(),
  /** How often the access log is checked for new lines. */
  logPollMs: z.number().int().min(10).max(10_000).optional(),
});
export type SquidConfig = z.infer<typeof SquidConfig>;

export interface SquidSettings {
  binary: string;
  confPath: string;
  includePath: string;
  accessLogPath: string;
  socketPath: string;
  socketGroup: string;
  helperChildren: number;
  helperConcurrency: number;
  helperCommand: string[];
  logPollMs: number;
  /** Agent-private files: the log cursor. */
  stateDir: string;
}

/** The agent binary as a command line: a compiled binary alone, or the runtime plus its script. */
export function selfCommand(): string[] {
  const script = process.argv[1];
  if (script && /\.(ts|js|mjs|cjs)$/.test(script) && !script.startsWith("/$bunfs/")) {
    return [process.execPath, path.resolve(script)];
  }
  return [process.execPath];
}

export function resolveSquidSettings(config: SquidConfig | undefined, stateDir: string): SquidSettings {
  const c = config ?? {};
  const own = path.join(stateDir, "squid");
  return {
    binary: c.binary ?? "/usr/sbin/squid",
    confPath: c.confPath ?? "/etc/squid/squid.conf",
    includePath: c.includePath ?? "/etc/squid/conf.d/fleetgate.conf",
    accessLogPath: c.accessLogPath ?? "/var/log/squid/fleetgate-access.log",
    socketPath: c.socketPath ?? "/run/fleetgate/squid-helper.sock",
    socketGroup: c.socketGroup ?? "proxy",
    helperChildren: c.helperChildren ?? 2,
    helperConcurrency: c.helperConcurrency ?? 200,
    helperCommand: c.helperCommand ?? [...selfCommand(), "squid-helper"],
    logPollMs: c.logPollMs ?? 200,
    stateDir: own,
  };
}
