// GET a URL through a forward proxy on loopback (absolute-form request, no connection reuse):
// shared by the end-to-end tests and the agent benchmark.
import http from "node:http";

export function proxyGet(proxyPort, url, timeoutMs = 5_000) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: "127.0.0.1",
        port: proxyPort,
        method: "GET",
        path: url,
        headers: { host: new URL(url).host },
        agent: false,
      },
      (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (d) => {
          body += d;
        });
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      },
    );
    request.setTimeout(timeoutMs, () => request.destroy(new Error("proxy request timed out")));
    request.once("error", reject);
    request.end();
  });
}
