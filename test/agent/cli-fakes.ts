// A recording Io and a tiny fake master (node:http on a free port) for the CLI tests.
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { runCli } from "../../agent/cli";
import type { Io } from "../../agent/cli-kit";

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

export type Handler = (
  req: http.IncomingMessage,
  body: string,
) => { status: number; body?: unknown; headers?: Record<string, string> };

export async function fakeMaster(handler: Handler) {
  const requests: { method: string; url: string; body: string; headers: http.IncomingHttpHeaders }[] = [];
  const server = http.createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    requests.push({ method: req.method ?? "", url: req.url ?? "", body, headers: req.headers });
    const answer = handler(req, body);
    res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
    res.end(answer.body === undefined ? undefined : JSON.stringify(answer.body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, requests, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

export const enrollAnswer = (publicKey = "pk-one") => ({
  status: 201,
  body: {
    nodeId: "node_test1",
    nodeToken: "fgn_secret-token",
    masterKey: { kid: `kid-${publicKey}`, alg: "Ed25519", publicKey },
    pollWaitSeconds: 20,
  },
});

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
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
