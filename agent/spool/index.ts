import path from "node:path";
import type { SpoolFigures } from "../../protocol/wire";
import type { MasterClient } from "../master/client";
import type { Clock, EventLogger } from "../ports";
import { DiskSpool } from "./disk-spool";
import type { SpoolSettings } from "./settings";
import type { SpoolFs } from "./spool-fs";
import { ChunkUploader } from "./uploader";

export { DiskSpool } from "./disk-spool";
export { readSpoolFigures } from "./read-figures";
export { nodeSpoolSettings, spoolSettingsFromEnv } from "./settings";
export { ChunkUploader } from "./uploader";

export interface SpoolingOptions {
  stateDir: string;
  master: MasterClient;
  clock: Clock;
  random: () => number;
  events: EventLogger;
  settings?: Partial<SpoolSettings>;
  fs?: SpoolFs;
}

/** The spool as `run` uses it: the proxy's sink, the figures for `/status`, and a bounded stop. */
export interface RunningSpool {
  sink: DiskSpool;
  figures(): SpoolFigures;
  /** Called (from the disk queue) whenever the figures may have changed. */
  onFiguresChange(listener: () => void): void;
  /** The master answered the sync loop: uploads waiting out an outage backoff retry now. */
  nudge(): void;
  /** Seals what is left and uploads for at most `deadlineMs`; whatever remains waits on disk. */
  stop(deadlineMs: number): Promise<void>;
}

export async function startSpooling(options: SpoolingOptions): Promise<RunningSpool> {
  const sink = await DiskSpool.open({
    dir: path.join(options.stateDir, "spool"),
    fs: options.fs,
    clock: options.clock,
    random: options.random,
    events: options.events,
    settings: options.settings,
  });
  sink.start();
  const uploader = new ChunkUploader({ ...options, store: sink });
  const halt = new AbortController();
  const uploading = uploader.run(halt.signal);
  options.events.emit("spool.open", { epoch: sink.epoch, ...sink.figures() });
  return {
    sink,
    figures: () => sink.figures(),
    onFiguresChange: (listener) => sink.onFiguresChange(listener),
    nudge: () => uploader.nudge(),
    async stop(deadlineMs) {
      const deadline = options.clock.now() + deadlineMs;
      await sink.close();
      const drained = await uploader.drain(Math.max(0, deadline - options.clock.now()));
      halt.abort();
      await uploading;
      options.events.emit("spool.stopped", { drained, ...sink.figures() });
    },
  };
}
