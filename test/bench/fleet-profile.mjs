// CPU profile of the master's worker (the fleet bench's --profile): V8's sampling profiler over the
// inspector that Miniflare opens with FLEET_INSPECT_PORT (miniflare-master.mjs). Where a publish's
// time goes inside workerd, measured rather than guessed: self time per function, and per source
// (our worker bundle, Miniflare's own workers, the runtime).
import { createRequire } from "node:module";

const WebSocket = createRequire(import.meta.url)("ws");

async function connect(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => /fleetgate/.test(t.url ?? t.title ?? "")) ?? targets[0];
  if (!target) throw new Error(`no inspector target on ${port}`);
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let nextId = 1;
  const pending = new Map();
  ws.on("message", (data) => {
    const msg = JSON.parse(String(data));
    const done = pending.get(msg.id);
    if (done) {
      pending.delete(msg.id);
      done(msg);
    }
  });
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { ws, send };
}

/** The worker isolate's V8 heap: used and total bytes (Runtime.getHeapUsage). */
export async function heapUsage(port) {
  const { ws, send } = await connect(port);
  const answer = await send("Runtime.getHeapUsage");
  ws.close();
  return answer.result ?? null;
}

export async function startProfile(port, { intervalUs = 250 } = {}) {
  const { ws, send } = await connect(port);
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: intervalUs });
  await send("Profiler.start");
  return {
    async stop() {
      const answer = await send("Profiler.stop");
      ws.close();
      return answer.result?.profile ?? null;
    },
  };
}

/** Self time per function and per source file, biggest first. */
export function summarize(profile, top = 25) {
  if (!profile) return null;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const deltas = profile.timeDeltas;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const dt = deltas[i] ?? 0;
    node.selfUs = (node.selfUs ?? 0) + dt;
  }
  let total = 0;
  const bySource = new Map();
  for (const node of profile.nodes) {
    const us = node.selfUs ?? 0;
    if (!us) continue;
    total += us;
    const f = node.callFrame;
    const source = f.url ? f.url.replace(/^.*\//, "") : `(${f.functionName || "native"})`;
    const key = `${f.functionName || "(anonymous)"} ${source}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + us);
    bySource.set(source, (bySource.get(source) ?? 0) + us);
  }
  const ms = (us) => Math.round(us / 100) / 10;
  const sorted = (m) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => ({ ms: ms(us), pct: Math.round((us / total) * 1000) / 10, what: k }));
  return { totalMs: ms(total), functions: sorted(self), sources: sorted(bySource) };
}
