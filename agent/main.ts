#!/usr/bin/env bun
// fleetgate-agent entry: wiring only; the commands live in agent/commands/.
import { runCli } from "./cli";

const io = {
  out: (text: string) => process.stdout.write(text),
  err: (text: string) => process.stderr.write(text),
  env: process.env,
};

runCli(process.argv.slice(2), io).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`fleetgate-agent: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  },
);
