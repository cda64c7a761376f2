import { type ParseArgsConfig, parseArgs } from "node:util";

/** Where a command writes; injected so commands run the same under tests. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  run(args: string[], io: Io): Promise<number>;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Bad flags or arguments: the CLI prints the message and the command's usage, exit 2. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs with usage errors instead of TypeErrors; null means `--help` was asked for. */
export function parseFlags<O extends Options>(
  args: string[],
  options: O,
): ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>>["values"] | null {
  if (args.includes("--help") || args.includes("-h")) return null;
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\. To specify a positional.*$/s, ""));
  }
}

export const STATE_DIR_HELP =
  "  --state-dir DIR   node state directory (env FLEETGATE_STATE_DIR, default /var/lib/fleetgate)";

export interface ListenAddress {
  host: string;
  port: number;
}

/** "HOST:PORT" or "[IPv6]:PORT"; throws UsageError when it is neither. */
export function parseListen(value: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || !(port >= 1 && port <= 65535)) {
    throw new UsageError(`--listen must look like HOST:PORT (e.g. 0.0.0.0:3128), got "${value}"`);
  }
  return { host: (match[1] ?? match[2])!, port };
}

export function formatListen({ host, port }: ListenAddress): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

export function ago(iso: string | null, nowMs = Date.now()): string {
  if (!iso) return "never";
  const seconds = Math.round((nowMs - Date.parse(iso)) / 1_000);
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3_600)} h ago`;
}
