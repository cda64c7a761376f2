import type { ChildProcess } from "node:child_process";

export interface StartMasterOptions {
  bootstrapToken: string;
  signingSeed: string;
  /** Overrides of wrangler.toml [vars] for this run. */
  vars?: Record<string, string>;
  /** A stopped master's data dir to start it again (the caller owns it). */
  persistDir?: string;
  port?: number;
  readyTimeoutMs?: number;
  /** Serve `GET /__scheduled` to run the cron trigger. */
  testScheduled?: boolean;
  /** "wrangler" (default: `wrangler dev`, as `npm start`) or "miniflare" (no proxy worker in front). */
  runtime?: "wrangler" | "miniflare";
}

export interface RunningMaster {
  url: string;
  port: number;
  persistDir: string;
  child: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number>;
export function startMaster(options: StartMasterOptions): Promise<RunningMaster>;
