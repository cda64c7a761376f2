// The CLI in-process with a recording Io, and the fake master over loopback HTTP for it.
import { runCli } from "../../../agent/cli";
import type { Io } from "../../../agent/cli-kit";
import { FakeMaster, type Route } from "./master";
import { freePort } from "./net";

export { freePort };

export async function cli(args: string[], env: Record<string, string> = {}) {
  let stdout = "";
  let stderr = "";
  const io: Io = {
    out: (text) => {
      stdout += text;
    },
    err: (text) => {
      stderr += text;
    },
    env,
  };
  const code = await runCli(args, io);
  return { code, stdout, stderr };
}

/** A listening fake master whose every answer comes from `route` (protocol defaults where it returns undefined). */
export async function fakeMaster(route: Route): Promise<FakeMaster> {
  const master = new FakeMaster();
  master.route = route;
  return master.listen();
}

/** Enrolls the state dir `dir` with the (fake) master at `masterUrl`; returns the proxy's listen port. */
export async function enrollAt(masterUrl: string, dir: string): Promise<number> {
  const port = await freePort();
  const result = await cli([
    "enroll",
    "--master",
    masterUrl,
    "--key",
    "k",
    "--state-dir",
    dir,
    "--listen",
    `127.0.0.1:${port}`,
  ]);
  if (result.code !== 0) throw new Error(`enroll failed (${result.code}): ${result.stderr}`);
  return port;
}
