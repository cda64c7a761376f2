// Process and port helpers the proxy and Squid benchmarks share: children whose stderr tail is
// kept for error messages, JSON-line waits on their stdout, free loopback ports, bounded waits.
import { spawn } from "node:child_process";
import net from "node:net";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Spawns with piped output; `child.log` keeps the last `keep` characters of its stderr. */
export function startChild(children, command, args, options = {}, keep = 8000) {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  child.detached = Boolean(options.detached);
  children.push(child);
  child.log = "";
  child.stderr?.on("data", (d) => {
    child.log = (child.log + d).slice(-keep);
  });
  return child;
}

/** Resolves with the first stdout JSON line of the given type; rejects on exit or after timeoutMs. */
export function waitForLine(child, type, timeoutMs) {
  return new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(
      () => reject(new Error(`no "${type}" line within ${timeoutMs} ms; stderr: ${child.log}`)),
      timeoutMs,
    );
    child.on("exit", (code) => reject(new Error(`exited with ${code}: ${child.log}`)));
    child.stdout.on("data", (d) => {
      buffered += d.toString();
      for (const line of buffered.split("\n").slice(0, -1)) {
        try {
          const msg = JSON.parse(line);
          if (msg.type === type) {
            clearTimeout(timer);
            resolve(msg);
          }
        } catch {}
      }
      buffered = buffered.slice(buffered.lastIndexOf("\n") + 1);
    });
  });
}

/** A loopback port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Polls `probe` until it returns something truthy, for at most timeoutMs. */
export async function waitFor(what, probe, timeoutMs = 30_000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch {}
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Resolves once something accepts connections on 127.0.0.1:port. */
export function waitForPort(port, timeoutMs) {
  return waitFor(
    `port ${port}`,
    () =>
      new Promise((resolve) => {
        const s = net.connect(port, "127.0.0.1", () => {
          s.destroy();
          resolve(true);
        });
        s.on("error", () => resolve(false));
      }),
    timeoutMs,
  );
}
