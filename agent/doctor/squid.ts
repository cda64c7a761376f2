// `fleetgate-agent doctor` on a Squid node (docs/squid.md, "doctor"): the binary and its version,
// the include written and included, squid.conf parsing, the helper answering through the agent,
// and the access log readable with the agent's reader keeping up.

import { spawn } from "node:child_process";
import { open, readFile, stat } from "node:fs/promises";
import { createConnection } from "node:net";
import path from "node:path";
import { parseListen } from "../cli-kit";
import { INCLUDE_MARK } from "../proxy/squid/include";
import { resolveSquidSettings, type SquidSettings } from "../proxy/squid/settings";
import { confWithCandidate, runSquid, squidComplaint, squidVersion } from "../proxy/squid/squid-ctl";
import type { NodeConfig } from "../state/schemas";
import type { CheckResult } from "./result";

const HELPER_TIMEOUT_MS = 10_000;
/** The reader polls every few hundred ms: unread bytes older than this mean it is not running. */
const STALE_MS = 10_000;

/** Appends the Squid checks; the built-in proxy's "port is free" check becomes "Squid listens there". */
export async function addSquidChecks(
  results: CheckResult[],
  config: NodeConfig,
  stateRoot: string,
): Promise<void> {
  const settings = resolveSquidSettings(config.squid, stateRoot);
  const listen = results.findIndex((r) => r.name.startsWith("proxy port "));
  if (listen >= 0) results.splice(listen, 1, await checkSquidListens(config.listen));
  const version = await squidVersion(settings.binary);
  results.push(
    version
      ? { name: "squid binary", status: "ok", detail: `Squid ${version} at ${settings.binary}` }
      : {
          name: "squid binary",
          status: "fail",
          detail: `${settings.binary} does not run`,
          hint: "apt-get install squid, or set squid.binary in config.json",
        },
  );
  results.push(await checkInclude(settings));
  if (version) results.push(await checkParse(settings));
  results.push(await checkHelper(settings));
  results.push(await checkLog(settings));
}

function checkSquidListens(listen: string): Promise<CheckResult> {
  const name = `squid port ${listen}`;
  const { host, port } = parseListen(listen);
  return new Promise((resolve) => {
    const socket = createConnection({ host, port, timeout: 5_000 });
    const finish = (result: CheckResult) => {
      socket.destroy();
      resolve(result);
    };
    socket.once("connect", () => finish({ name, status: "ok", detail: "Squid accepts connections" }));
    const down = (detail: string) =>
      finish({
        name,
        status: "fail",
        detail,
        hint: "start Squid (systemctl start squid); --listen names Squid's http_port",
      });
    socket.once("timeout", () => down("timed out"));
    socket.once("error", (error: NodeJS.ErrnoException) => down(error.code ?? error.message));
  });
}

async function checkInclude(settings: SquidSettings): Promise<CheckResult> {
  const name = "squid include";
  const text = await readFile(settings.includePath, "utf8").catch(() => null);
  if (text === null || !text.startsWith(INCLUDE_MARK)) {
    return {
      name,
      status: "fail",
      detail:
        text === null
          ? `${settings.includePath} missing`
          : `${settings.includePath} was not written by the agent`,
      hint: "start the agent (fleetgate-agent run): it writes the include after squid -k parse accepts it",
    };
  }
  const conf = await readFile(settings.confPath, "utf8").catch(() => null);
  if (conf === null) {
    return {
      name,
      status: "fail",
      detail: `cannot read ${settings.confPath}`,
      hint: "set squid.confPath in config.json",
    };
  }
  if ((await confWithCandidate(conf, settings.includePath, settings.includePath)) === null) {
    return {
      name,
      status: "fail",
      detail: `${settings.confPath} does not include ${settings.includePath}`,
      hint: `add "include ${settings.includePath}" to squid.conf before its final http_access lines, then squid -k reconfigure`,
    };
  }
  return { name, status: "ok", detail: `${settings.includePath}, included from ${settings.confPath}` };
}

async function checkParse(settings: SquidSettings): Promise<CheckResult> {
  const run = await runSquid(settings.binary, ["-k", "parse", "-f", settings.confPath]);
  return run.code === 0
    ? { name: "squid -k parse", status: "ok", detail: `${settings.confPath} parses` }
    : {
        name: "squid -k parse",
        status: "fail",
        detail: squidComplaint(run.output),
        hint: "fix the named squid.conf line; the agent never writes an include Squid rejects",
      };
}

/** Runs the helper exactly as Squid does and asks it one question through the agent. */
function checkHelper(settings: SquidSettings): Promise<CheckResult> {
  const name = "squid helper answers";
  const [command, ...args] = settings.helperCommand;
  return new Promise((resolve) => {
    const child = spawn(command!, [...args, "--socket", settings.socketPath, "decide"], {
      stdio: ["pipe", "pipe", "ignore"],
    });
    let out = "";
    const finish = (result: CheckResult) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      resolve(result);
    };
    const timer = setTimeout(
      () =>
        finish({
          name,
          status: "fail",
          detail: "no answer in time",
          hint: `check ${settings.helperCommand.join(" ")}`,
        }),
      HELPER_TIMEOUT_MS,
    );
    child.on("error", (error) =>
      finish({ name, status: "fail", detail: error.message, hint: "set squid.helperCommand in config.json" }),
    );
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      out += chunk;
      if (!out.includes("\n")) return;
      const answer = out.slice(0, out.indexOf("\n"));
      if (answer.includes("Fleetgate agent unreachable")) {
        finish({
          name,
          status: "fail",
          detail: `the helper cannot reach the agent at ${settings.socketPath}: Squid refuses every request (503)`,
          hint: "start the agent (systemctl start fleetgate-agent / fleetgate-agent run)",
        });
      } else {
        finish({
          name,
          status: "ok",
          detail: `answered through ${settings.socketPath}: ${answer.split(" ").slice(1, 3).join(" ")}`,
        });
      }
    });
    // A documentation address (TEST-NET-1): the destination guard judges it without a DNS lookup,
    // and the helper only answers, it never connects.
    child.stdin!.write("0 127.0.0.1 GET http 192.0.2.1 80 / - 0\n");
  });
}

async function checkLog(settings: SquidSettings): Promise<CheckResult> {
  const name = "squid access log";
  const file = settings.accessLogPath;
  const s = await stat(file).catch(() => null);
  if (s === null) {
    return {
      name,
      status: "warn",
      detail: `${file} does not exist yet`,
      hint: "Squid creates it on (re)configure with the include and writes a line per request",
    };
  }
  const handle = await open(file, "r").catch((error: Error) => error);
  if (handle instanceof Error) {
    return {
      name,
      status: "fail",
      detail: handle.message,
      hint: "the agent must be able to read Squid's log (group proxy)",
    };
  }
  await handle.close();
  const cursorText = await readFile(path.join(settings.stateDir, "log-cursor.json"), "utf8").catch(
    () => null,
  );
  const cursor = cursorText ? (JSON.parse(cursorText) as { ino: number; offset: number }) : null;
  const age = Math.round((Date.now() - s.mtimeMs) / 1000);
  if (cursor === null)
    return { name, status: "warn", detail: `${file} readable; the agent has not read it yet` };
  const behind = cursor.ino === s.ino ? s.size - cursor.offset : s.size;
  if (behind > 0 && Date.now() - s.mtimeMs > STALE_MS) {
    return {
      name,
      status: "fail",
      detail: `${behind} bytes written ${age} s ago are not read yet: the agent's reader is not advancing`,
      hint: "start the agent; it resumes from its cursor with nothing lost",
    };
  }
  return {
    name,
    status: "ok",
    detail: `${file} readable, reader ${behind > 0 ? `${behind} bytes behind` : "up to date"}, last line ${age} s ago`,
  };
}
