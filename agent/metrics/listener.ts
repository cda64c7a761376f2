// The metrics endpoint: GET /metrics on a node-local address, off unless configured. node:http
// (Bun runs it natively): a scrape every few seconds needs none of the proxy's raw-socket speed.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { formatListen, type ListenAddress, UsageError } from "../cli-kit";

const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Loopback unless `allowRemote`: the figures name no secrets but say a lot about a network. */
export function checkMetricsListen(address: ListenAddress, allowRemote: boolean): void {
  const host = address.host.toLowerCase();
  const loopback = host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  if (!loopback && !allowRemote) {
    throw new UsageError(
      `metrics listen address ${formatListen(address)} is not loopback: use 127.0.0.1:PORT, or set metrics.allowRemote (--metrics-allow-remote) to expose it`,
    );
  }
}

export interface MetricsListener {
  /** "host:port" actually bound. */
  address: string;
  close(): Promise<void>;
}

export async function listenMetrics(address: ListenAddress, render: () => string): Promise<MetricsListener> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics\n");
      return;
    }
    const body = render();
    res.writeHead(200, { "content-type": CONTENT_TYPE, "cache-control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    address: formatListen({ host: bound.address, port: bound.port }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
