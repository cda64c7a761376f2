// The agent's side of the helper socket: Squid's helpers (agent/proxy/squid/helper.ts) relay their
// stdin here and their answers back. Decisions come from the one compiled policy the agent holds
// in memory, so N helper processes cost N small relays, not N copies of a 1M-domain policy, and a
// new version decides the next line the moment applyPolicy() swaps it.
//
// Wire: the helper's first line is `fleetgate-helper/1 decide` or `fleetgate-helper/1 auth`; then
// every line is one Squid request line (with its channel id), answered by one line, in any order.

import { lookup } from "node:dns/promises";
import { chmod, chown, mkdir, readFile, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { networkInterfaces } from "node:os";
import path from "node:path";
import type { EventLogger } from "../../ports";
import { DestinationGuard, type Resolver, selfAddresses } from "../builtin/destination-guard";
import type { ActivePolicy } from "../types";
import { answerAuth, answerDecide } from "./decisions";
import { LineBatcher } from "./line-batcher";

export const HELLO_PREFIX = "fleetgate-helper/1 ";
const MAX_LINE = 64 * 1024;

export interface DecisionServerOptions {
  socketPath: string;
  /** Group allowed to connect (Squid's); the socket is 0660 root:<group>. Null: leave the group. */
  group: string | null;
  events: EventLogger;
  current(): ActivePolicy | null;
  nextRequestId(): string;
  now?: () => number;
  /** Names to addresses for the destination guard (IPv4 first, as the built-in proxy's). */
  resolve?: Resolver;
}

/** The system resolver, as the built-in proxy's resolveHost orders it (node:dns, so it runs under Node too). */
export async function resolveSystem(name: string): Promise<string[]> {
  const answers = await lookup(name, { all: true });
  const v4 = answers.filter((a) => a.family === 4).map((a) => a.address);
  const v6 = answers.filter((a) => a.family !== 4).map((a) => a.address);
  return [...v4, ...v6];
}

function ownAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces()))
    for (const entry of list ?? []) out.push(entry.address);
  return out;
}

export class DecisionServer {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  answered = 0;
  /** One guard per Squid listening port (the loop check's port); own addresses re-read every 30 s. */
  private readonly guards = new Map<number, DestinationGuard>();
  private selfSeenAt = 0;

  constructor(private readonly o: DecisionServerOptions) {}

  private guard(listenPort: number): DestinationGuard {
    const now = Date.now();
    if (now - this.selfSeenAt > 30_000) {
      this.selfSeenAt = now;
      const own = ownAddresses();
      for (const [port, guard] of this.guards) guard.setSelf(selfAddresses(own, port));
    }
    let guard = this.guards.get(listenPort);
    if (guard === undefined) {
      guard = new DestinationGuard(this.o.resolve ?? resolveSystem);
      guard.setSelf(selfAddresses(ownAddresses(), listenPort));
      this.guards.set(listenPort, guard);
    }
    return guard;
  }

  async start(): Promise<void> {
    await mkdir(path.dirname(this.o.socketPath), { recursive: true });
    // A socket left by a crashed agent would make listen() fail with EADDRINUSE.
    await rm(this.o.socketPath, { force: true });
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.o.socketPath, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    await chmod(this.o.socketPath, 0o660);
    if (this.o.group !== null) {
      const gid = await groupId(this.o.group);
      if (gid === null) throw new Error(`group "${this.o.group}" not found (squid.socketGroup)`);
      await chown(this.o.socketPath, process.getuid?.() ?? 0, gid);
    }
    this.o.events.emit("squid.helper_socket", { path: this.o.socketPath });
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(this.o.socketPath, { force: true });
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.setEncoding("utf8");
    let mode: "decide" | "auth" | null = null;
    let pending = "";
    const out = new LineBatcher((text) => {
      if (!socket.destroyed) socket.write(text);
    });
    socket.on("data", (chunk: string) => {
      pending += chunk;
      if (pending.length > MAX_LINE && pending.indexOf("\n") < 0) {
        socket.destroy();
        return;
      }
      let nl = pending.indexOf("\n");
      while (nl >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        nl = pending.indexOf("\n");
        if (mode === null) {
          const wanted = line.startsWith(HELLO_PREFIX) ? line.slice(HELLO_PREFIX.length) : "";
          if (wanted !== "decide" && wanted !== "auth") {
            socket.destroy();
            return;
          }
          mode = wanted;
          continue;
        }
        if (line === "") continue;
        this.answer(out, mode, line);
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => this.sockets.delete(socket));
  }

  private answer(out: LineBatcher, mode: "decide" | "auth", line: string): void {
    const policy = this.o.current();
    const answering =
      mode === "decide"
        ? answerDecide(line, {
            policy,
            nextRequestId: this.o.nextRequestId,
            now: this.o.now ?? Date.now,
            guard: (port) => this.guard(port),
          })
        : answerAuth(line, policy);
    answering
      .catch((error: unknown) => {
        this.o.events.emit("squid.helper_answer_failed", { level: "warn", error: String(error) });
        return `${line.split(" ")[0]} BH message="fleetgate: internal error"\n`;
      })
      .then((answer) => {
        this.answered++;
        out.push(answer);
      });
  }
}

async function groupId(name: string): Promise<number | null> {
  if (/^\d+$/.test(name)) return Number(name);
  const groups = await readFile("/etc/group", "utf8").catch(() => "");
  for (const line of groups.split("\n")) {
    const [group, , gid] = line.split(":");
    if (group === name && gid !== undefined) return Number(gid);
  }
  return null;
}
