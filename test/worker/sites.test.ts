import { env } from "cloudflare:test";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { parseSiteHeader, verifySiteAssertion } from "../../protocol/site";
import type { EnrollResponse } from "../../protocol/wire";
import { ack, createSite, enrollInSite, pollNow, setLastSeen } from "./fleet-helpers";
import { call, expectError, json } from "./helpers/api";
import { createApiToken, publish } from "./helpers/factories";

describe("sites", () => {
  it("creates, lists, updates and refuses bad settings with the JSON path", async () => {
    const site = await createSite({
      settings: { bypass: ["10.20.0.0/16", "corp.example"], allowDirect: true },
    });
    expect(site.settings).toEqual({ bypass: ["10.20.0.0/16", "corp.example"], allowDirect: true });
    const listed = await json<{ sites: { name: string }[] }>(await call("/api/v1/sites"), 200);
    expect(listed.sites.map((s) => s.name)).toContain(site.name);
    const bad = await expectError(
      await call(`/api/v1/sites/${site.name}`, {
        method: "PATCH",
        body: { settings: { bypass: ["not a net!"] } },
      }),
      400,
      "VALIDATION_FAILED",
    );
    expect(bad.error.details?.[0]?.path).toBe("settings.bypass[0]");
    await expectError(await call("/api/v1/sites", { body: { name: site.name } }), 409, "CONFLICT");
    await expectError(await call("/api/v1/sites", { body: { name: "bad name" } }), 400, "VALIDATION_FAILED");
  });

  it("places a node in its key's site, signs it, and lets an admin move it", async () => {
    const berlin = await createSite();
    const paris = await createSite();
    const key = await json<{ key: string }>(
      await call("/api/v1/enrollment-keys", { body: { name: "berlin key", site: berlin.name } }),
      201,
    );
    const enrolled = await json<EnrollResponse>(
      await call("/api/agent/v1/enroll", {
        token: null,
        body: {
          enrollmentKey: key.key,
          instanceId: `instance-site-${Date.now()}`,
          hostname: "b1.example",
          agentVersion: "0.1.0",
          proxyKind: "builtin",
        },
      }),
      201,
    );
    expect(enrolled.site).toMatchObject({ nodeId: enrolled.nodeId, site: berlin.name });
    expect(await verifySiteAssertion(enrolled.site!, enrolled.nodeId, [enrolled.masterKey])).toBe(true);
    // Bound to the node: the same assertion does not verify for another node.
    expect(await verifySiteAssertion(enrolled.site!, "node_someoneelse00", [enrolled.masterKey])).toBe(false);

    const first = await pollNow(enrolled.nodeToken);
    expect(parseSiteHeader(first.site)?.site).toBe(berlin.name);

    const moved = await json<{ site: string }>(
      await call(`/api/v1/nodes/${enrolled.nodeId}`, { method: "PATCH", body: { site: paris.name } }),
      200,
    );
    expect(moved.site).toBe(paris.name);
    // The move reaches the isolate's node cache through its sweep (every 2 s): within seconds.
    let later = parseSiteHeader((await pollNow(enrolled.nodeToken)).site)!;
    for (let i = 0; i < 40 && later.site !== paris.name; i++) {
      await new Promise((r) => setTimeout(r, 250));
      later = parseSiteHeader((await pollNow(enrolled.nodeToken)).site)!;
    }
    expect(later.site).toBe(paris.name);
    expect(later.since).toBeGreaterThan(enrolled.site!.since);
    expect(await verifySiteAssertion(later, enrolled.nodeId, [enrolled.masterKey])).toBe(true);

    await expectError(
      await call(`/api/v1/nodes/${enrolled.nodeId}`, { method: "PATCH", body: { site: "no-such-site" } }),
      404,
      "NOT_FOUND",
    );
    await expectError(
      await call("/api/v1/enrollment-keys", { body: { name: "k", site: "no-such-site" } }),
      404,
      "NOT_FOUND",
    );
    const audit = await json<{ entries?: unknown[]; audit?: unknown[] }>(
      await call("/api/v1/audit?limit=20"),
      200,
    );
    expect(JSON.stringify(audit)).toContain("node.site");
  });

  it("filters the node list by site", async () => {
    const a = await createSite();
    const b = await createSite();
    const na = await enrollInSite(a.name, "a1.example");
    await enrollInSite(b.name, "b1.example");
    const listed = await json<{ nodes: { id: string; site: string }[] }>(
      await call(`/api/v1/nodes?site=${a.name}`),
      200,
    );
    expect(listed.nodes.map((n) => n.id)).toEqual([na.nodeId]);
  });

  it("viewers may read sites but not change them", async () => {
    const viewer = await createApiToken("viewer");
    await json(await call("/api/v1/sites", { token: viewer.token }), 200);
    await expectError(
      await call("/api/v1/sites", { token: viewer.token, body: { name: "nope" } }),
      403,
      "FORBIDDEN",
    );
    await expectError(await call("/api/v1/sites", { token: null }), 401, "UNAUTHORIZED");
  });
});

describe("site rules", () => {
  const sitePolicy = (site: string) => ({
    lists: {
      local: { domains: ["intranet.example"], sites: [site] },
    },
    rules: [
      { id: "site-block", action: "block", match: { domains: ["games.example"], sites: [site] } },
      { id: "local-only", action: "block", match: { domains: ["@local"] } },
    ],
    defaultAction: "allow",
  });

  it("names the JSON path of bad site references", async () => {
    const bad = {
      lists: { office: { cidrs: ["10.0.0.0/8"], sites: ["x"] } },
      access: { clients: ["@office"] },
      rules: [{ id: "r", action: "block", match: { sites: ["bad site"] } }],
      defaultAction: "allow",
    };
    const body = await expectError(
      await call("/api/v1/policy/validate", { body: { policy: bad } }),
      422,
      "POLICY_INVALID",
    );
    const paths = body.error.details!.map((d) => d.path);
    expect(paths).toContain("rules[0].match.sites[0]");
    const ok = {
      lists: { office: { cidrs: ["10.0.0.0/8"], sites: ["x"] } },
      access: { clients: ["@office"] },
      rules: [],
      defaultAction: "allow",
    };
    const scoped = await expectError(
      await call("/api/v1/policy/validate", { body: { policy: ok } }),
      422,
      "POLICY_INVALID",
    );
    expect(scoped.error.details![0]).toMatchObject({ path: "access.clients[0]" });
    expect(scoped.error.details![0]!.message).toMatch(/site-scoped/);
  });

  it("the request tester judges a site rule for the named site only", async () => {
    const site = await createSite();
    const policy = sitePolicy(site.name);
    const ask = async (url: string, requestSite?: string) =>
      json<{ action: string; rule?: { id: string }; trace: { step: string; detail: string }[] }>(
        await call("/api/v1/policy/simulate", {
          body: {
            policy,
            request: { client: "10.0.0.1", url, ...(requestSite ? { site: requestSite } : {}) },
          },
        }),
        200,
      );
    expect((await ask("http://games.example/", site.name)).action).toBe("block");
    const elsewhere = await ask("http://games.example/", "other-site");
    expect(elsewhere.action).toBe("allow");
    expect(elsewhere.trace.find((t) => t.step === "site-block")?.detail).toMatch(/other-site/);
    expect((await ask("http://games.example/")).action).toBe("allow");
    expect((await ask("http://intranet.example/", site.name)).action).toBe("block");
    expect((await ask("http://intranet.example/", "other-site")).action).toBe("allow");
  });
});

// The PAC text is evaluated by pac-resolver in test/protocol/pac-render.test.ts and in the e2e run
// (QuickJS needs Node); here the data behind it comes from real D1: who is healthy, in what order.
const pacAnswer = (text: string) => /\n {2}return ("[^"]*");\n\}\n$/.exec(text)?.[1];

describe("PAC files", () => {
  it("lists the site's healthy nodes in order, drops an offline one, bypasses local networks", async () => {
    const site = await createSite({
      settings: { bypass: ["10.20.0.0/16", "corp.example"], allowDirect: false },
    });
    const v = await publish(
      {
        rules: [{ id: "pac", action: "block", match: { domains: ["pac.example"] } }],
        defaultAction: "allow",
      },
      "pac",
    );
    const a = await enrollInSite(site.name, "a.pac.example");
    const b = await enrollInSite(site.name, "b.pac.example");
    const c = await enrollInSite(site.name, "c.pac.example");
    const d = await enrollInSite(site.name, "d.pac.example");
    for (const [node, port] of [
      [a, 3128],
      [b, 3129],
      [c, 3130],
      [d, 3131],
    ] as const) {
      await ack(node.nodeToken, v, {
        proxy: { kind: "builtin", listen: `0.0.0.0:${port}`, version: "builtin/0.1.0" },
      });
    }
    await call(`/api/v1/nodes/${c.nodeId}`, {
      method: "PATCH",
      body: { publicAddress: "proxy-c.corp.example:8080" },
    });
    // b goes offline (not seen for two minutes); d rejected the version (a NACK): neither is healthy.
    await setLastSeen(b.nodeId, Date.now() - 120_000);
    await ack(d.nodeToken, v, { state: "rejected", error: "cannot apply" });
    const res = await call(`/pac/${site.name}.pac`, { token: null });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toContain("application/x-ns-proxy-autoconfig");
    expect(res.headers.get("Cache-Control")).toMatch(/public, max-age=\d+/);
    const text = await res.text();
    expect(text).not.toMatch(/fg[nbe]_|token/i);
    // The nodes poll from 203.0.113.10 (the test client address), so a 0.0.0.0 listen becomes that.
    expect(pacAnswer(text)).toBe('"PROXY 203.0.113.10:3128; PROXY proxy-c.corp.example:8080"');
    expect(text).toContain('["corp.example"]');
    expect(text).toContain('[["10.20.0.0","255.255.0.0"]]');

    // b comes back: it takes its place in the order.
    await setLastSeen(b.nodeId, Date.now());
    const again = await (await call(`/pac/${site.name}.pac`, { token: null })).text();
    expect(pacAnswer(again)).toBe(
      '"PROXY 203.0.113.10:3128; PROXY 203.0.113.10:3129; PROXY proxy-c.corp.example:8080"',
    );
  });

  it("ends with DIRECT only when the site allows it, and 404s an unknown site", async () => {
    const open = await createSite({ settings: { allowDirect: true } });
    expect(pacAnswer(await (await call(`/pac/${open.name}.pac`, { token: null })).text())).toBe('"DIRECT"');
    const closed = await createSite({ settings: { allowDirect: false } });
    expect(pacAnswer(await (await call(`/pac/${closed.name}.pac`, { token: null })).text())).toBe(
      '"PROXY 127.0.0.1:9"',
    );
    await expectError(await call("/pac/no-such-site.pac", { token: null }), 404, "NOT_FOUND");
    await expectError(await call("/pac/a%22b.pac", { token: null }), 404, "NOT_FOUND");
  });
});

describe("fleet metrics", () => {
  it("serves Prometheus text that a real parser reads, to admin and viewer tokens", async () => {
    const site = await createSite();
    const v = await publish(
      { rules: [{ id: "m", action: "block", match: { domains: ["m.example"] } }], defaultAction: "allow" },
      "m",
    );
    const node = await enrollInSite(site.name, "m1.example");
    await ack(node.nodeToken, v, {
      spool: {
        pendingChunks: 3,
        pendingBytes: 4096,
        oldestPendingAt: new Date(Date.now() - 60_000).toISOString(),
        droppedRecords: 2,
      },
    });
    const viewer = await createApiToken("viewer");
    const res = await call("/api/v1/metrics", { token: viewer.token });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toContain("text/plain");
    type Family = {
      name: string;
      type: string;
      metrics: { value: string; labels?: Record<string, string> }[];
    };
    const families = parsePrometheusTextFormat(await res.text()) as Family[];
    const byName = new Map(families.map((f) => [f.name, f]));
    const nodes = byName.get("fleetgate_nodes")!;
    expect(nodes.type).toBe("GAUGE");
    const mine = nodes.metrics.find(
      (m) => (m as { labels?: Record<string, string> }).labels?.site === site.name,
    ) as { labels: Record<string, string>; value: string };
    expect(mine.labels).toMatchObject({ status: "online", sync: "head" });
    expect(Number(mine.value)).toBe(1);
    expect(Number((byName.get("fleetgate_policy_head_version")!.metrics[0] as { value: string }).value)).toBe(
      v.version,
    );
    expect(
      Number((byName.get("fleetgate_spool_pending_chunks")!.metrics[0] as { value: string }).value),
    ).toBeGreaterThanOrEqual(3);
    expect(
      Number(
        (byName.get("fleetgate_spool_oldest_pending_age_seconds")!.metrics[0] as { value: string }).value,
      ),
    ).toBeGreaterThanOrEqual(59);
    expect(byName.has("fleetgate_nodes_by_applied_version")).toBe(true);
    expect(byName.has("fleetgate_ingest_lag_seconds")).toBe(true);
    await expectError(await call("/api/v1/metrics", { token: null }), 401, "UNAUTHORIZED");
    void env;
  });
});
