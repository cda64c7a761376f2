// Child process for the kill -9 test: writes numbered records as fast as it can, flushing (and so
// sealing, with tiny chunks) all the time, and prints how many records are durable after each flush.

import { systemClock } from "../../agent/clock";
import { DiskSpool } from "../../agent/spool/disk-spool";
import { record } from "./fakes/spool";

const [dir, round] = process.argv.slice(2);
const spool = await DiskSpool.open({
  dir: dir!,
  clock: systemClock,
  random: Math.random,
  settings: { maxChunkRecords: 37, syncIntervalMs: 1 },
});
let written = 0;
for (;;) {
  for (let i = 0; i < 25; i++) spool.write(record(written, { requestId: `${round}-${written++}` }));
  await spool.flush();
  process.stdout.write(`${written}\n`);
}
