// 20 policy versions applied while a load loop sends requests through Debian's Squid: the port
// never refuses a connection (no reconfigure happens), and every answer comes from a version that
// was in force at some moment between the request's send and its answer.

import { afterAll, beforeAll, expect, it } from "vitest";
import { makePolicy, type Origin, startOrigin } from "./proxy-helpers";
import { rawRequest, type SquidNode, startSquidNode } from "./squid-helpers";

let origin: Origin;
let node: SquidNode;

function versionPolicy(k: number, originPort: number): Record<string, unknown> {
  return makePolicy({
    rules: [
      { id: `v${k}`, action: "block", match: { domains: ["probe.test"] } },
      { id: `origin-v${k}`, action: "allow", match: { ports: [originPort] } },
    ],
  });
}

beforeAll(async () => {
  origin = await startOrigin((_req, res) => res.end("origin"));
  node = await startSquidNode({ helperChildren: 2 });
  await node.apply(versionPolicy(1, origin.port), 1);
}, 60_000);

afterAll(async () => {
  await node?.close();
  await origin?.close();
});

it("20 versions under load: no refused connection, every answer from a version in force", async () => {
  const CHANGES = 20;
  // Version k decides from the call that applies it until the call applying k+1 has returned.
  const applyStart = new Map<number, number>([[1, 0]]);
  const applyEnd = new Map<number, number>([[1, 0]]);
  const answers: { sent: number; answered: number; version: number }[] = [];
  let refused = 0;
  let otherErrors = 0;
  let originOk = 0;
  let originBad = 0;
  let stop = false;

  const worker = async (n: number) => {
    for (let i = 0; !stop; i++) {
      const probe = (i + n) % 2 === 0;
      const url = probe ? "http://probe.test/" : `http://127.0.0.1:${origin.port}/`;
      const sent = performance.now();
      try {
        const res = await rawRequest(
          node.port,
          `GET ${url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        );
        const answered = performance.now();
        if (probe) {
          const m = /Rule: (?:<[^>]+>)?v(\d+)/.exec(res.body) ?? /Rule: v(\d+)/.exec(res.body);
          if (res.status !== 403 || !m) otherErrors++;
          else answers.push({ sent, answered, version: Number(m[1]) });
        } else if (res.status === 200) originOk++;
        else originBad++;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ECONNREFUSED") refused++;
        else otherErrors++;
      }
    }
  };
  const workers = [0, 1, 2, 3].map(worker);
  await new Promise((r) => setTimeout(r, 300));
  for (let k = 2; k <= CHANGES + 1; k++) {
    applyStart.set(k, performance.now());
    await node.apply(versionPolicy(k, origin.port), k);
    applyEnd.set(k, performance.now());
    // Next change once this version has answered a probe (bounded), so each one is exercised.
    const until = Date.now() + 10_000;
    while (!answers.some((a) => a.version === k) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 300));
  stop = true;
  await Promise.all(workers);

  const last = CHANGES + 1;
  const wrong = answers.filter(({ sent, answered, version }) => {
    const from = applyStart.get(version);
    if (from === undefined || from > answered) return true;
    const until = version === last ? Number.POSITIVE_INFINITY : applyEnd.get(version + 1)!;
    return until < sent;
  });
  expect(refused).toBe(0);
  expect(otherErrors).toBe(0);
  expect(originBad).toBe(0);
  expect(answers.length).toBeGreaterThan(40);
  expect(originOk).toBeGreaterThan(40);
  expect(wrong).toEqual([]);
  // Every version was seen deciding, the last one at the end; Squid was never reloaded.
  const seen = new Set(answers.map((a) => a.version));
  for (let k = 2; k <= last; k++) expect(seen.has(k), `version ${k} decided a request`).toBe(true);
  expect(answers.at(-1)!.version).toBe(last);
  expect(node.driver.reconfigures()).toBe(0);
}, 120_000);
