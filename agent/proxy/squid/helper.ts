// Helper mode: what Squid runs as its external ACL and basic-auth helper (`fleetgate-agent
// squid-helper --socket PATH decide|auth`). A relay with no policy of its own: Squid's lines go to
// the running agent over its unix socket and the answers come back. When the agent cannot be
// reached every question gets a refusal at once (fail closed): "error" for decisions (Squid serves
// 503), ERR for logins. A later line tries the socket again, so the helper recovers by itself when
// the agent returns; Squid never has to restart it.

import { createConnection, type Socket } from "node:net";
import { HELLO_PREFIX } from "./decision-server";
import { LineBatcher } from "./line-batcher";

export type HelperMode = "decide" | "auth";

export interface HelperOptions {
  mode: HelperMode;
  socketPath: string;
  input: NodeJS.ReadableStream;
  write(text: string): void;
  /** After a failed connect, lines are refused without trying again for this long. */
  retryAfterMs?: number;
}

const UNREACHABLE_HTML =
  "<p>This proxy cannot reach its Fleetgate agent, so it forwards nothing. Try again shortly.</p>";

function refuse(mode: HelperMode, line: string): string {
  const id = line.split(" ")[0] ?? "0";
  if (mode === "auth") return `${id} ERR message="fleetgate agent unreachable"\n`;
  return `${id} ERR fg_action=error fg_title="Fleetgate agent unreachable" fg_html="${UNREACHABLE_HTML}" fg_request="-"\n`;
}

export function runHelper(options: HelperOptions): Promise<void> {
  const stdout = new LineBatcher(options.write);
  const o = { ...options, write: (text: string) => stdout.push(text) };
  const retryAfterMs = o.retryAfterMs ?? 1_000;
  let toAgent: LineBatcher | null = null;
  let socket: Socket | null = null;
  let connected = false;
  let downUntil = 0;
  /** Lines sent to the agent (or waiting for the connection) and not answered yet, by channel id. */
  const inFlight = new Map<string, string>();
  const queued: string[] = [];

  // Queued lines are in inFlight too: each is refused once.
  const failAll = () => {
    queued.length = 0;
    for (const line of inFlight.values()) o.write(refuse(o.mode, line));
    inFlight.clear();
  };

  const connect = () => {
    const s = createConnection(o.socketPath);
    socket = s;
    toAgent = new LineBatcher((text) => {
      if (!s.destroyed) s.write(text);
    });
    s.setEncoding("utf8");
    let pending = "";
    s.on("connect", () => {
      connected = true;
      s.write(`${HELLO_PREFIX}${o.mode}\n`);
      for (const line of queued) s.write(`${line}\n`);
      queued.length = 0;
    });
    s.on("data", (chunk: string) => {
      pending += chunk;
      let nl = pending.indexOf("\n");
      while (nl >= 0) {
        const answer = pending.slice(0, nl + 1);
        pending = pending.slice(nl + 1);
        nl = pending.indexOf("\n");
        inFlight.delete(answer.slice(0, answer.indexOf(" ")));
        o.write(answer);
      }
    });
    s.on("error", () => undefined);
    s.on("close", () => {
      if (!connected) downUntil = Date.now() + retryAfterMs;
      connected = false;
      socket = null;
      failAll();
    });
  };

  const ask = (line: string) => {
    const id = line.split(" ")[0] ?? "";
    if (socket === null && Date.now() < downUntil) {
      o.write(refuse(o.mode, line));
      return;
    }
    inFlight.set(id, line);
    if (socket === null) connect();
    if (connected) toAgent!.push(`${line}\n`);
    else queued.push(line);
  };

  return new Promise((resolve) => {
    let pending = "";
    o.input.setEncoding("utf8");
    o.input.on("data", (chunk: string) => {
      pending += chunk;
      let nl = pending.indexOf("\n");
      while (nl >= 0) {
        const line = pending.slice(0, nl).replace(/\r$/, "");
        pending = pending.slice(nl + 1);
        nl = pending.indexOf("\n");
        if (line !== "") ask(line);
      }
    });
    // Squid closes our stdin when it stops or reconfigures: finish what is in flight, then go.
    o.input.on("end", () => {
      const s = socket as Socket | null;
      if (s === null || inFlight.size === 0) {
        s?.destroy();
        resolve();
        return;
      }
      const timer = setTimeout(() => s.destroy(), 2_000);
      s.on("close", () => {
        clearTimeout(timer);
        resolve();
      });
      const check = setInterval(() => {
        if (inFlight.size === 0) {
          clearInterval(check);
          s.end();
        }
      }, 10);
    });
  });
}
