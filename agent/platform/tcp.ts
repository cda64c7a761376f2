// Bun TCP sockets behind a small interface, so the proxy core in agent/proxy/builtin/ never touches
// Bun APIs. Bun's socket.write() is unbuffered (it returns how much the kernel took), so this file
// keeps the unsent rest and reports "drained" once it is gone — callers only see write() → boolean.

import { networkInterfaces } from "node:os";
import type { Socket, TCPSocketListener } from "bun";

/** Events of one connection; the owner swaps them when a pooled upstream changes hands. */
export interface TcpHandlers {
  data(chunk: Buffer): void;
  /** Everything written earlier has reached the kernel. */
  drain(): void;
  /** The peer sent FIN (half-close); the socket is still writable. */
  end(): void;
  close(error?: Error): void;
}

export interface TcpConnection {
  readonly remoteAddress: string;
  readonly closed: boolean;
  handlers: TcpHandlers;
  /** Queues the bytes; false means they did not all fit and drain() follows later. */
  write(chunk: Uint8Array): boolean;
  /** Bytes are queued that the kernel did not take yet (drain() follows when they are gone). */
  readonly backlogged: boolean;
  /** Sends FIN after everything queued was written. */
  end(): void;
  /** Closes now, dropping anything queued. */
  destroy(): void;
  pause(): void;
  resume(): void;
}

export interface TcpListener {
  readonly port: number;
  readonly hostname: string;
  /** Stops accepting; open connections stay. */
  stop(): void;
}

export interface ConnectAttempt {
  /** Gives up: a socket that still opens is closed at once and onOpen is never called. */
  cancel(): void;
}

const NO_HANDLERS: TcpHandlers = {
  data() {},
  drain() {},
  end() {},
  close() {},
};

class BunConnection implements TcpConnection {
  handlers: TcpHandlers = NO_HANDLERS;
  closed = false;
  private queue: Uint8Array[] = [];
  private ending = false;
  private paused = false;

  constructor(private readonly socket: Socket<BunConnection>) {}

  get remoteAddress(): string {
    return this.socket.remoteAddress;
  }

  get backlogged(): boolean {
    return this.queue.length > 0;
  }

  write(chunk: Uint8Array): boolean {
    if (this.closed) return false;
    if (this.queue.length > 0) {
      this.queue.push(chunk);
      return false;
    }
    const n = this.socket.write(chunk);
    if (n === chunk.byteLength) return true;
    if (n < 0) return false;
    this.queue.push(n === 0 ? chunk : chunk.subarray(n));
    return false;
  }

  end(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    if (this.queue.length === 0) this.socket.end();
  }

  destroy(): void {
    if (this.closed) return;
    this.queue.length = 0;
    this.socket.terminate();
  }

  pause(): void {
    if (this.paused || this.closed) return;
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.paused || this.closed) return;
    this.paused = false;
    this.socket.resume();
  }

  onDrain(): void {
    const queue = this.queue;
    while (queue.length > 0) {
      const head = queue[0]!;
      const n = this.socket.write(head);
      if (n < 0) return;
      if (n < head.byteLength) {
        queue[0] = head.subarray(n);
        return;
      }
      queue.shift();
    }
    if (this.ending) {
      this.socket.end();
      return;
    }
    this.handlers.drain();
  }

  onClose(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.handlers.close(error);
  }
}

const socketHandlers = {
  binaryType: "buffer" as const,
  data(socket: Socket<BunConnection>, chunk: Buffer) {
    socket.data.handlers.data(chunk);
  },
  drain(socket: Socket<BunConnection>) {
    socket.data.onDrain();
  },
  end(socket: Socket<BunConnection>) {
    socket.data.handlers.end();
  },
  close(socket: Socket<BunConnection>, error?: Error) {
    socket.data?.onClose(error);
  },
  error(socket: Socket<BunConnection>, error: Error) {
    socket.data?.onClose(error);
  },
};

export function listenTcp(
  hostname: string,
  port: number,
  onConnection: (connection: TcpConnection) => TcpHandlers,
): TcpListener {
  const listener: TCPSocketListener<BunConnection> = Bun.listen<BunConnection>({
    hostname,
    port,
    // Half-open on: a tunnel must keep carrying the other direction after one side's FIN.
    allowHalfOpen: true,
    socket: {
      ...socketHandlers,
      open(socket) {
        const connection = new BunConnection(socket);
        socket.data = connection;
        socket.setNoDelay(true);
        connection.handlers = onConnection(connection);
      },
    },
  });
  return {
    port: listener.port,
    hostname: listener.hostname,
    stop: () => listener.stop(false),
  };
}

export function connectTcp(
  hostname: string,
  port: number,
  onOpen: (connection: TcpConnection) => void,
  onFail: (error: Error) => void,
): ConnectAttempt {
  let cancelled = false;
  Bun.connect<BunConnection>({
    hostname,
    port,
    allowHalfOpen: true,
    socket: {
      ...socketHandlers,
      open(socket) {
        if (cancelled) {
          socket.terminate();
          return;
        }
        const connection = new BunConnection(socket);
        socket.data = connection;
        socket.setNoDelay(true);
        onOpen(connection);
      },
      connectError(_socket, error) {
        if (!cancelled) onFail(error);
      },
    },
  }).catch((error: unknown) => {
    // connectError has already reported it; this only keeps the rejection handled.
    void error;
  });
  return {
    cancel() {
      cancelled = true;
    },
  };
}

/** One DNS resolution (Bun's resolver and cache): addresses in the order to try, IPv4 first. */
export async function resolveHost(name: string): Promise<string[]> {
  const answers = await Bun.dns.lookup(name, {});
  const v4 = answers.filter((a) => a.family === 4).map((a) => a.address);
  const v6 = answers.filter((a) => a.family !== 4).map((a) => a.address);
  return [...v4, ...v6];
}

/** Every address of this machine's interfaces (the destination guard refuses them). */
export function localAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? []) out.push(entry.address);
  }
  return out;
}
