// Policy enforcement in the built-in proxy: block page, access list, proxy auth, fail-closed.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Harness,
  makePolicy,
  type Origin,
  passwordHashFor,
  proxyRequest,
  RawClient,
  startHarness,
  startOrigin,
} from "./proxy-helpers";

let proxy: Harness;
let origin: Origin;

const blockingPolicy = makePolicy({
  lists: { social: { domains: ["blocked.test"] } },
  rules: [
    {
      id: "no-social",
      name: "No <social> media",
      action: "block",
      match: { domains: ["@social"] },
      message: 'Blocked during "work" & <meetings>.',
    },
  ],
  blockPage: { title: "Stop <here>", body: "Ask IT & friends." },
});

beforeAll(async () => {
  origin = await startOrigin((req, res) => res.end(`hello ${req.url}`));
  proxy = await startHarness(blockingPolicy);
});

afterAll(async () => {
  proxy?.kill();
  await origin?.close();
});

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

describe("rules", () => {
  it("shows an escaped block page with the rule, message and request id", async () => {
    const res = await proxyRequest(
      proxy.port,
      "GET http://www.blocked.test/page?x=1 HTTP/1.1\r\nHost: www.blocked.test\r\n\r\n",
    );
    expect(res.status).toBe(403);
    expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    const html = res.body.toString();
    expect(html).toContain("<title>Stop &lt;here&gt;</title>");
    expect(html).toContain("Ask IT &amp; friends.");
    expect(html).toContain("Blocked during &quot;work&quot; &amp; &lt;meetings&gt;.");
    expect(html).toContain("No &lt;social&gt; media (no-social)");
    expect(html).not.toContain("<meetings>");
    const requestId = res.headers["x-fleetgate-request-id"]!;
    expect(html).toContain(requestId);
    const record = await proxy.waitForLog((r) => r.requestId === requestId);
    expect(record).toMatchObject({
      host: "www.blocked.test",
      port: 80,
      path: "/page",
      status: 403,
      action: "block",
      rule: "no-social",
    });
    // The connection stays usable after a block page.
    res.client.send(`GET http://127.0.0.1:${origin.port}/next HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect((await res.client.readResponse()).body.toString()).toBe("hello /next");
    res.client.close();
  });

  it("answers a blocked CONNECT with 403", async () => {
    const client = await RawClient.connect(proxy.port);
    client.send("CONNECT www.blocked.test:443 HTTP/1.1\r\nHost: www.blocked.test:443\r\n\r\n");
    const res = await client.readResponse();
    expect(res.status).toBe(403);
    const record = await proxy.waitForLog((r) => r.requestId === res.headers["x-fleetgate-request-id"]);
    expect(record).toMatchObject({
      scheme: "connect",
      method: "CONNECT",
      port: 443,
      action: "block",
      rule: "no-social",
    });
    client.close();
  });

  it("lets other hosts through", async () => {
    const res = await proxyRequest(
      proxy.port,
      `GET http://127.0.0.1:${origin.port}/ok HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(res.status).toBe(200);
    res.client.close();
  });
});

describe("policy swaps", () => {
  it("judge the next request on an open keep-alive connection by the new policy without dropping it", async () => {
    const client = await RawClient.connect(proxy.port);
    client.send(`GET http://127.0.0.1:${origin.port}/before HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect((await client.readResponse()).status).toBe(200);
    await proxy.applyPolicy(
      makePolicy({ rules: [{ id: "no-origin", action: "block", match: { ports: [origin.port] } }] }),
    );
    try {
      client.send(`GET http://127.0.0.1:${origin.port}/after HTTP/1.1\r\nHost: x\r\n\r\n`);
      const blocked = await client.readResponse();
      expect(blocked.status).toBe(403);
      expect(client.isClosed).toBe(false);
    } finally {
      await proxy.applyPolicy(blockingPolicy);
    }
    client.send(`GET http://127.0.0.1:${origin.port}/again HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect((await client.readResponse()).body.toString()).toBe("hello /again");
    client.close();
  });
});

describe("access list", () => {
  it("answers 403 to clients outside access.clients, for HTTP and CONNECT", async () => {
    await proxy.applyPolicy(makePolicy({ access: { clients: ["10.0.0.0/8"] } }));
    try {
      const res = await proxyRequest(
        proxy.port,
        `GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`,
      );
      expect(res.status).toBe(403);
      expect(res.body.toString()).toContain("does not accept requests from your address");
      const record = await proxy.waitForLog((r) => r.requestId === res.headers["x-fleetgate-request-id"]);
      expect(record).toMatchObject({ status: 403, action: "block" });
      expect(record.rule).toBeUndefined();
      res.client.close();

      const client = await RawClient.connect(proxy.port);
      client.send(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\n\r\n`);
      expect((await client.readResponse()).status).toBe(403);
      client.close();
    } finally {
      await proxy.applyPolicy(blockingPolicy);
    }
  });
});

describe("proxy authentication", () => {
  beforeAll(async () => {
    await proxy.applyPolicy(
      makePolicy({
        auth: {
          required: true,
          realm: "Fleetgate Office",
          users: [{ name: "alice", passwordHash: await passwordHashFor("correct horse"), groups: ["staff"] }],
        },
      }),
    );
  });

  afterAll(async () => {
    await proxy.applyPolicy(blockingPolicy);
  });

  it("challenges a request without credentials with 407", async () => {
    const res = await proxyRequest(
      proxy.port,
      `GET http://127.0.0.1:${origin.port}/a HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(res.status).toBe(407);
    expect(res.headers["proxy-authenticate"]).toBe('Basic realm="Fleetgate Office"');
    const record = await proxy.waitForLog((r) => r.requestId === res.headers["x-fleetgate-request-id"]);
    expect(record).toMatchObject({ status: 407, action: "auth" });
    res.client.close();
  });

  it("refuses a wrong password with 407 and accepts the right one on the same connection", async () => {
    const client = await RawClient.connect(proxy.port);
    client.send(
      `GET http://127.0.0.1:${origin.port}/b HTTP/1.1\r\nHost: x\r\nProxy-Authorization: ${basic("alice", "wrong")}\r\n\r\n`,
    );
    const wrong = await client.readResponse();
    expect(wrong.status).toBe(407);
    client.send(
      `GET http://127.0.0.1:${origin.port}/c HTTP/1.1\r\nHost: x\r\nProxy-Authorization: ${basic("alice", "correct horse")}\r\n\r\n`,
    );
    const right = await client.readResponse();
    expect(right.status).toBe(200);
    expect(right.body.toString()).toBe("hello /c");
    const record = await proxy.waitForLog((r) => r.path === "/c");
    expect(record).toMatchObject({ user: "alice", status: 200, action: "allow" });
    client.close();
  });

  it("challenges CONNECT too", async () => {
    const client = await RawClient.connect(proxy.port);
    client.send(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\n\r\n`);
    const res = await client.readResponse();
    expect(res.status).toBe(407);
    expect(res.headers["proxy-authenticate"]).toContain("Basic");
    client.close();
  });
});

describe("no policy: fail closed", () => {
  it("answers 503 before any policy arrives", async () => {
    const bare = await startHarness(null);
    try {
      const res = await proxyRequest(
        bare.port,
        `GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`,
      );
      expect(res.status).toBe(503);
      expect(res.body.toString()).toContain("has not received a policy yet");
      res.client.close();
      const client = await RawClient.connect(bare.port);
      client.send(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\n\r\n`);
      expect((await client.readResponse()).status).toBe(503);
      client.close();
      const record = await bare.waitForLog((r) => r.scheme === "connect");
      expect(record).toMatchObject({ status: 503, action: "error" });
    } finally {
      bare.kill();
    }
  });

  it("goes back to 503 when the policy is withdrawn", async () => {
    await proxy.applyPolicy(null);
    try {
      const res = await proxyRequest(
        proxy.port,
        `GET http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`,
      );
      expect(res.status).toBe(503);
      res.client.close();
    } finally {
      await proxy.applyPolicy(blockingPolicy);
    }
  });
});
