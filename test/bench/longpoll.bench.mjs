// Publish → waiting long-poll answered, on the local master (wrangler dev, local D1, PolicyHub DO).
// 20 rounds: park a poll with the current hash, publish, time until the poll answers.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { startMaster } from "../helpers/master.mjs";

const ROUNDS = 20;
const token = `fgb_bench-${Date.now()}-0123456789`;
const master = await startMaster({
  bootstrapToken: token,
  signingSeed: "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
});
const admin = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
const post = async (p, body, headers = admin) => {
  const res = await fetch(`${master.url}${p}`, { method: "POST", headers, body: JSON.stringify(body) });
  if (res.status >= 300) throw new Error(`${p}: ${res.status} ${await res.text()}`);
  return res.json();
};
const policy = (i) => ({
  rules: [{ id: "r", action: "block", match: { domains: [`round-${i}.example`] } }],
  defaultAction: "allow",
});
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * 0.95) - 1];

try {
  const { key } = await post("/api/v1/enrollment-keys", { name: "bench" });
  const node = await post(
    "/api/agent/v1/enroll",
    {
      enrollmentKey: key,
      instanceId: `bench-${Date.now()}`,
      hostname: "bench",
      agentVersion: "bench",
      proxyKind: "builtin",
    },
    { "Content-Type": "application/json" },
  );
  let { hash } = await post("/api/v1/policy/versions", { policy: policy(0), message: "start" });
  const fromPublishStart = [];
  const fromPublishAnswer = [];
  for (let i = 1; i <= ROUNDS; i++) {
    const poll = fetch(`${master.url}/api/agent/v1/policy?wait=30`, {
      headers: { Authorization: `Bearer ${node.nodeToken}`, "If-None-Match": `"${hash}"` },
    }).then(async (res) => ({ status: res.status, body: await res.json(), at: performance.now() }));
    await new Promise((r) => setTimeout(r, 400));
    const t0 = performance.now();
    const published = await post("/api/v1/policy/versions", { policy: policy(i), message: `round ${i}` });
    const t1 = performance.now();
    const answer = await poll;
    if (answer.status !== 200 || answer.body.version !== published.version)
      throw new Error(`round ${i}: poll answered ${answer.status}`);
    fromPublishStart.push(answer.at - t0);
    fromPublishAnswer.push(answer.at - t1);
    hash = published.hash;
  }
  const rows = [
    {
      metric: "publish sent → poll answered, median",
      value: median(fromPublishStart),
      unit: "ms",
      target: "<= 100",
    },
    { metric: "publish sent → poll answered, p95", value: p95(fromPublishStart), unit: "ms" },
    { metric: "publish answered → poll answered, median", value: median(fromPublishAnswer), unit: "ms" },
  ];
  console.table(rows);
  const out = path.resolve(import.meta.dirname, "../../bench-results");
  mkdirSync(out, { recursive: true });
  writeFileSync(
    path.join(out, "longpoll.json"),
    JSON.stringify({ name: "longpoll", rounds: ROUNDS, rows, fromPublishStart, fromPublishAnswer }, null, 2),
  );
} finally {
  master.stop();
}
