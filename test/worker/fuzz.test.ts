// Fuzz of every endpoint: the routes come from the OpenAPI document and the Hono router (admin
// API, agent protocol, dashboard pages and forms), so a new route is covered without editing
// this file. Random and mutated bodies, headers, encodings, sizes and query strings from a
// seeded PRNG (FUZZ_SEED to replay), bounded in requests and time. Asserts: no 5xx, and every
// 4xx JSON answer has the uniform body {error:{code,message,requestId}}.
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";
import { app } from "../../worker/app";
import { createSession, csrfTokenFor } from "../../worker/services/sessions";
import { db, signedIn } from "./dashboard-helpers";
import { BASE, call, json } from "./helpers/api";
import { blockPolicy, createApiToken, createEnrollmentKey, enrollNode, publish } from "./helpers/factories";
import { gzip, record } from "./helpers/logs";

// `FUZZ_SEED=123 npx vitest run --project worker test/worker/fuzz.test.ts` replays one run.
const SEED = Number(env.FUZZ_SEED ?? 0x5eed_f00d) >>> 0;
const MAX_REQUESTS = 1_500;
// Small enough that the rest of the suite, running beside it on two cores, keeps its time bounds.
const TIME_BUDGET_MS = 45_000;
const REQUEST_TIMEOUT_MS = 15_000;

// mulberry32: small, fast, good enough to pick cases; the seed makes a failure replayable.
function prng(seed: number) {
  let a = seed;
  const next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const chance = (p: number) => next() < p;
  return { next, int, pick, chance };
}

type Rng = ReturnType<typeof prng>;
type Schema = Record<string, unknown>;

interface Route {
  method: string;
  /** Hono form: /api/v1/nodes/:id */
  path: string;
  body?: Schema;
  query: { name: string; schema: Schema }[];
  headers: { name: string; schema: Schema }[];
}

const WEIRD_STRINGS = [
  "",
  " ",
  "0",
  "-1",
  "1e309",
  "NaN",
  "null",
  "true",
  "[]",
  "{}",
  "%00",
  "%",
  "%zz",
  "../../etc/passwd",
  "\u0000",
  "\ud800",
  "\u{1F600}",
  "ä/ö?ü#",
  "<script>alert(1)</script>",
  "' OR 1=1 --",
  "9999999999999999999999",
  "2026-12-01T00:00:00Z",
  "275760-09-13T00:00:00Z",
  "node_aaaaaaaaaaaa",
  "usr_aaaaaaaaaaaa",
  "tok_aaaaaaaaaaaa",
  "key_aaaaaaaaaaaa",
  "x".repeat(300),
];

function randomString(rng: Rng): string {
  if (rng.chance(0.5)) return rng.pick(WEIRD_STRINGS);
  const length = rng.pick([1, 5, 20, 100, 2000]);
  let out = "";
  for (let i = 0; i < length; i++) {
    out += rng.chance(0.9)
      ? String.fromCharCode(32 + rng.int(95))
      : String.fromCodePoint(rng.pick([0x0, 0x7f, 0xe9, 0x2028, 0xfeff, 0x1f600, 0xd83d]));
  }
  return out;
}

function randomJson(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 3 ? 5 : 8)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308, 42, 65536]);
    case 3:
    case 4:
      return randomString(rng);
    case 5:
    case 6:
      return Array.from({ length: rng.int(4) }, () => randomJson(rng, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: rng.int(4) }, () => [
          randomString(rng).slice(0, 20),
          randomJson(rng, depth + 1),
        ]),
      );
  }
}

/** A value that (roughly) fits a JSON schema from the OpenAPI document. */
function fromSchema(rng: Rng, schema: Schema | undefined, refs: Record<string, Schema>, depth = 0): unknown {
  if (!schema || depth > 6) return randomJson(rng, 3);
  if (typeof schema.$ref === "string")
    return fromSchema(rng, refs[schema.$ref.split("/").pop()!], refs, depth + 1);
  const options = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined;
  if (options?.length) return fromSchema(rng, rng.pick(options), refs, depth + 1);
  if (Array.isArray(schema.enum)) return rng.pick(schema.enum);
  if (schema.const !== undefined) return schema.const;
  if (schema.example !== undefined && rng.chance(0.3)) return schema.example;
  const type = Array.isArray(schema.type) ? rng.pick(schema.type as string[]) : schema.type;
  switch (type) {
    case "object": {
      const props = (schema.properties ?? {}) as Record<string, Schema>;
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(props)) out[key] = fromSchema(rng, child, refs, depth + 1);
      return out;
    }
    case "array":
      return Array.from({ length: rng.int(3) }, () =>
        fromSchema(rng, schema.items as Schema, refs, depth + 1),
      );
    case "string":
      if (schema.format === "date-time") return new Date(Date.now() + 86_400_000).toISOString();
      if (schema.format === "email") return `fuzz${rng.int(1000)}@example.com`;
      return rng.chance(0.6) ? `fuzz-${rng.int(1e6)}-long-enough` : randomString(rng);
    case "integer":
    case "number": {
      const min = typeof schema.minimum === "number" ? schema.minimum : 0;
      const max = typeof schema.maximum === "number" ? schema.maximum : min + 1000;
      return min + rng.int(Math.max(1, Math.min(max - min, 1e6) + 1));
    }
    case "boolean":
      return rng.chance(0.5);
    case "null":
      return null;
    default:
      return randomJson(rng, 2);
  }
}

/** Mutations of a well-formed value: drop, retype, bloat, nest, add. */
function mutate(rng: Rng, value: unknown): unknown {
  if (value === null || typeof value !== "object" || rng.chance(0.15)) {
    return rng.chance(0.5) ? randomJson(rng) : value;
  }
  if (Array.isArray(value)) {
    const copy = value.map((v) => (rng.chance(0.3) ? mutate(rng, v) : v));
    if (rng.chance(0.2)) copy.push(randomJson(rng, 2));
    return copy;
  }
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(copy);
  if (keys.length && rng.chance(0.4)) delete copy[rng.pick(keys)];
  if (keys.length && rng.chance(0.5)) {
    const key = rng.pick(keys);
    copy[key] = mutate(rng, copy[key]);
  }
  if (rng.chance(0.2)) copy[randomString(rng).slice(0, 30) || "extra"] = randomJson(rng, 2);
  // An own "__proto__" key, as JSON.parse makes it from a hostile body.
  if (rng.chance(0.05))
    Object.defineProperty(copy, "__proto__", { value: { polluted: true }, enumerable: true });
  return copy;
}

function deepNesting(depth: number) {
  return `${"[".repeat(depth)}${"]".repeat(depth)}`;
}

const FORM_FIELDS = [
  "name",
  "role",
  "password",
  "password2",
  "token",
  "disabled",
  "email",
  "policy",
  "json",
  "message",
  "url",
  "method",
  "client",
  "user",
  "groups",
  "index",
  "direction",
  "enabled",
  "domains",
  "cidrs",
  "list",
  "schedule",
  "tz",
  "days",
  "from",
  "to",
  "action",
  "id",
  "rule",
  "next",
  "key",
  "maxUses",
  "expiresAt",
  "required",
  "realm",
  "title",
  "body",
  "includeQuery",
  "defaultAction",
  "version",
];

interface Credentials {
  admin: string;
  viewer: string;
  node: string;
  adminSession: { cookie: string; csrf: string };
  viewerSession: { cookie: string; csrf: string };
  ids: Record<string, string[]>;
}

// A lone surrogate cannot be URI-encoded; its raw UTF-8-ish bytes are a fine case of their own.
const enc = (value: string) => {
  try {
    return encodeURIComponent(value);
  } catch {
    return "%ED%A0%80";
  }
};

function pathFor(rng: Rng, route: Route, creds: Credentials) {
  return route.path.replace(/:(\w+)/g, (_, name: string) => {
    if (rng.chance(0.25)) return enc(randomString(rng)).slice(0, 300) || "x";
    const pool =
      name === "version"
        ? ["1", "2", "0", "-1", "999999"]
        : name === "index"
          ? ["0", "1", "-1", "99"]
          : route.path.includes("/nodes")
            ? creds.ids.node!
            : route.path.includes("/users")
              ? creds.ids.usr!
              : route.path.includes("/tokens")
                ? creds.ids.tok!
                : route.path.includes("keys")
                  ? creds.ids.key!
                  : ["x"];
    return enc(rng.pick(pool.length ? pool : ["x"]));
  });
}

function queryFor(rng: Rng, route: Route, refs: Record<string, Schema>) {
  const params = new URLSearchParams();
  for (const q of route.query) {
    if (rng.chance(0.6))
      params.set(q.name, String(rng.chance(0.6) ? fromSchema(rng, q.schema, refs) : randomString(rng)));
  }
  if (route.path.startsWith("/api/agent/v1/policy"))
    params.set("wait", rng.pick(["0", "0", "-1", "x", "56", "1"]));
  if (rng.chance(0.2)) params.set(randomString(rng).slice(0, 20) || "q", randomString(rng).slice(0, 200));
  if (rng.chance(0.05)) return `?${"a=1&".repeat(2000)}`;
  if (rng.chance(0.05)) return rng.pick(["?%", "?from=%E0%A4%A", "?limit=1&limit=2", "?=", "?&&"]);
  let text: string;
  try {
    text = params.toString();
  } catch {
    text = "q=%ED%A0%80";
  }
  return text ? `?${text}` : "";
}

async function bodyFor(
  rng: Rng,
  route: Route,
  refs: Record<string, Schema>,
  creds: Credentials,
  csrf: string | null,
): Promise<{ body?: BodyInit; headers: Record<string, string> }> {
  const headers: Record<string, string> = {};
  const isDashboard = !route.path.startsWith("/api/");
  const isLogs = route.path === "/api/agent/v1/logs";
  let text: string | Uint8Array | undefined;
  const roll = rng.int(10);
  if (isLogs) {
    const records = Array.from({ length: 1 + rng.int(3) }, () =>
      rng.chance(0.7)
        ? record({ ts: new Date(Date.now() - rng.int(3_600_000)).toISOString() })
        : mutate(rng, record()),
    );
    text = rng.chance(0.8) ? records.map((r) => JSON.stringify(r)).join("\n") : randomString(rng);
    headers["Content-Type"] = "application/x-ndjson";
    headers["X-Fleetgate-Chunk"] = rng.chance(0.7)
      ? `fuzz${rng.int(50)}.${rng.int(1000)}`
      : randomString(rng).slice(0, 80);
  } else if (isDashboard) {
    const form = new URLSearchParams();
    if (csrf && rng.chance(0.85)) form.set("_csrf", csrf);
    for (let i = rng.int(6); i > 0; i--) {
      form.append(rng.pick(FORM_FIELDS), rng.chance(0.5) ? randomString(rng) : `fuzz-${rng.int(1000)}`);
    }
    if (rng.chance(0.1)) form.set("json", JSON.stringify(mutate(rng, blockPolicy("fuzz.example"))));
    text = form.toString();
    headers["Content-Type"] = rng.pick([
      "application/x-www-form-urlencoded",
      "application/x-www-form-urlencoded",
      "multipart/form-data",
      "multipart/form-data; boundary=zzz",
      "text/plain",
      "application/json",
    ]);
    headers.Origin = rng.chance(0.9) ? BASE : rng.pick(["https://evil.example", "null"]);
  } else if (roll < 5 && route.body) {
    text = JSON.stringify(mutate(rng, fromSchema(rng, route.body, refs)));
    headers["Content-Type"] = "application/json";
  } else if (roll < 6 && route.body) {
    text = JSON.stringify(fromSchema(rng, route.body, refs));
    headers["Content-Type"] = "application/json";
  } else if (roll < 8) {
    text = JSON.stringify(randomJson(rng));
    headers["Content-Type"] = rng.pick([
      "application/json",
      "application/json; charset=latin1",
      "text/plain",
      "",
    ]);
  } else if (roll < 9) {
    text = rng.pick([
      deepNesting(5000),
      "{",
      '{"a":',
      "\ufeff{}",
      "null",
      "[]",
      "\u0000",
      `{"policy":${deepNesting(3000)}}`,
    ]);
    headers["Content-Type"] = "application/json";
  } else {
    text = Uint8Array.from({ length: rng.int(512) }, () => rng.int(256));
    headers["Content-Type"] = rng.pick([
      "application/json",
      "application/octet-stream",
      "multipart/form-data; boundary=x",
    ]);
  }
  if (rng.chance(0.02))
    text = `${typeof text === "string" ? text : ""}${" ".repeat(rng.pick([300_000, 1_100_000]))}`;
  if (headers["Content-Type"] === "") delete headers["Content-Type"];
  let body: BodyInit | undefined = text;
  const encoding = isLogs
    ? rng.pick(["gzip", "gzip", "gzip", "", "deflate", "br", "GZIP", "x"])
    : rng.chance(0.1)
      ? rng.pick(["gzip", "deflate", "br", "identity", "zz"])
      : "";
  if (encoding) {
    headers["Content-Encoding"] = encoding;
    if (encoding.toLowerCase() === "gzip" && rng.chance(0.85) && text !== undefined) {
      body = await gzip(typeof text === "string" ? text : new TextDecoder().decode(text));
    }
  }
  void creds;
  return { body, headers };
}

function authFor(
  rng: Rng,
  route: Route,
  creds: Credentials,
): { headers: Record<string, string>; csrf: string | null } {
  const agent = route.path.startsWith("/api/agent/");
  const dashboard = !route.path.startsWith("/api/");
  // Dashboard pages mostly with a session (a bearer token there only earns a redirect to sign in).
  const choice = dashboard && rng.chance(0.8) ? 5 + rng.int(5) : rng.int(10);
  if (choice === 0) return { headers: {}, csrf: null };
  if (choice === 1)
    return {
      headers: {
        Authorization: rng.pick([
          "Bearer",
          "Bearer x",
          "Basic Zm9vOmJhcg==",
          `Bearer ${"a".repeat(600)}`,
          "bearer fgt_nope",
        ]),
      },
      csrf: null,
    };
  if (agent && choice < 8) return { headers: { Authorization: `Bearer ${creds.node}` }, csrf: null };
  if (choice < 5)
    return {
      headers: { Authorization: `Bearer ${rng.chance(0.7) ? creds.admin : creds.viewer}` },
      csrf: null,
    };
  const session = choice < 8 ? creds.adminSession : creds.viewerSession;
  const headers: Record<string, string> = {
    Cookie: `__Host-fg_session=${rng.chance(0.9) ? session.cookie : randomString(rng).slice(0, 50)}`,
  };
  if (rng.chance(0.7)) headers["X-CSRF-Token"] = rng.chance(0.9) ? session.csrf : "nope";
  return { headers, csrf: session.csrf };
}

/** OpenAPI operations plus every concrete route the router knows (dashboard pages and forms). */
async function discoverRoutes(): Promise<{ routes: Route[]; refs: Record<string, Schema> }> {
  const doc = await json<{
    paths: Record<
      string,
      Record<
        string,
        {
          requestBody?: { content?: Record<string, { schema?: Schema }> };
          parameters?: { in: string; name: string; schema?: Schema }[];
        }
      >
    >;
    components?: { schemas?: Record<string, Schema> };
  }>(await call("/api/openapi.json", { token: null }), 200);
  const refs = doc.components?.schemas ?? {};
  const byKey = new Map<string, Route>();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const honoPath = path.replace(/\{(\w+)\}/g, ":$1");
      const route: Route = {
        method: method.toUpperCase(),
        path: honoPath,
        body: op.requestBody?.content?.["application/json"]?.schema,
        query: (op.parameters ?? [])
          .filter((p) => p.in === "query")
          .map((p) => ({ name: p.name, schema: p.schema ?? {} })),
        headers: (op.parameters ?? [])
          .filter((p) => p.in === "header")
          .map((p) => ({ name: p.name, schema: p.schema ?? {} })),
      };
      byKey.set(`${route.method} ${route.path}`, route);
    }
  }
  for (const r of app.routes) {
    if (r.method === "ALL" || r.path.includes("*")) continue;
    const path = r.path.length > 1 ? r.path.replace(/\/$/, "") : r.path;
    const key = `${r.method} ${path}`;
    if (!byKey.has(key)) byKey.set(key, { method: r.method, path, query: [], headers: [] });
  }
  return { routes: [...byKey.values()], refs };
}

it("fuzzes every route: no 5xx, uniform JSON errors", async () => {
  const started = Date.now();
  const rng = prng(SEED);
  const admin = await createApiToken("admin");
  const viewer = await createApiToken("viewer");
  const key = await createEnrollmentKey({ name: "fuzz" });
  const node = await enrollNode({ enrollmentKey: key.key });
  await publish(blockPolicy("fuzz.example"), "fuzz baseline");
  const adminSession = await signedIn("admin");
  const viewerSession = await signedIn("viewer");
  const creds: Credentials = {
    admin: admin.token,
    viewer: viewer.token,
    node: node.nodeToken,
    adminSession,
    viewerSession,
    ids: { node: [node.nodeId], usr: [viewerSession.user.id], tok: [viewer.id], key: [key.id] },
  };
  const users = { admin: adminSession.user.id, viewer: viewerSession.user.id };
  const { routes, refs } = await discoverRoutes();
  expect(routes.length).toBeGreaterThan(40);

  const failures: string[] = [];
  const covered = new Set<string>();
  const statuses = new Map<number, number>();
  let sent = 0;
  let fiveXx = 0;
  const heal = async () => {
    // Fuzzed calls may switch things off (allow list, a /logout, a password change); put back
    // what the next requests rely on so the run keeps reaching deep code.
    await call("/api/v1/settings/agent-allowlist", {
      method: "PUT",
      token: admin.token,
      body: { enabled: false, cidrs: [] },
    });
    for (const role of ["admin", "viewer"] as const) {
      const key = role === "admin" ? "adminSession" : "viewerSession";
      const probe = await exports.default.fetch(
        new Request(`${BASE}/overview`, {
          headers: { Cookie: `__Host-fg_session=${creds[key].cookie}` },
          redirect: "manual",
        }),
      );
      await probe.text();
      if (probe.status !== 200) {
        // A fresh session for the same user, straight from the service (no PBKDF2 login).
        const session = await createSession({ db: db(), userId: users[role], meta: {} });
        creds[key] = { cookie: session.id, csrf: await csrfTokenFor(session.id) };
      }
    }
  };
  while (sent < MAX_REQUESTS && Date.now() - started < TIME_BUDGET_MS) {
    // Round-robin over routes so every one is hit; the case for each is random.
    const route = routes[sent % routes.length]!;
    const method = rng.chance(0.05)
      ? rng.pick(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
      : route.method;
    const auth = authFor(rng, route, creds);
    const { body, headers } =
      method === "GET" || method === "HEAD"
        ? { body: undefined, headers: {} }
        : await bodyFor(rng, route, refs, creds, auth.csrf);
    const extra: Record<string, string> = {};
    if (rng.chance(0.2))
      extra["X-Request-Id"] = randomString(rng)
        .slice(0, 300)
        .replace(/[^\x20-\x7e]/g, "");
    if (rng.chance(0.1))
      extra["If-None-Match"] = rng.pick([
        '"abc"',
        "*",
        'W/"x"',
        randomString(rng).replace(/[^\x20-\x7e]/g, ""),
      ]);
    if (rng.chance(0.05))
      extra["Cf-Access-Jwt-Assertion"] = `${randomString(rng)}.${randomString(rng)}.x`.replace(
        /[^\x20-\x7e]/g,
        "",
      );
    if (rng.chance(0.05)) extra["Content-Length"] = String(rng.int(10_000_000));
    const url = `${BASE}${pathFor(rng, route, creds)}${queryFor(rng, route, refs)}`;
    // Header values a client can put on the wire: visible ASCII (workerd refuses the rest itself).
    const wire = Object.fromEntries(
      Object.entries({
        "CF-Connecting-IP": `198.18.${rng.int(256)}.${rng.int(256)}`,
        ...headers,
        ...auth.headers,
        ...extra,
      }).map(([k, v]) => [k, v.replace(/[^\x20-\x7e]/g, "?")]),
    );
    let request: Request;
    try {
      request = new Request(url, {
        method,
        headers: wire,
        body: method === "GET" || method === "HEAD" ? undefined : body,
        redirect: "manual",
      });
    } catch {
      continue;
    }
    sent++;
    covered.add(`${route.method} ${route.path}`);
    let response: Response;
    try {
      response = await Promise.race([
        exports.default.fetch(request),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("timeout")), REQUEST_TIMEOUT_MS)),
      ]);
    } catch (error) {
      // Invalid combinations the Request constructor or workerd refuse before our code runs.
      if (String(error).includes("timeout"))
        failures.push(`${method} ${url}: no answer in ${REQUEST_TIMEOUT_MS} ms`);
      continue;
    }
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    const text = await response.text();
    if (response.status >= 500) {
      fiveXx++;
      failures.push(`${method} ${url} → ${response.status} ${text.slice(0, 200)}`);
    } else if (
      method !== "HEAD" &&
      response.status >= 400 &&
      (response.headers.get("Content-Type") ?? "").includes("application/json")
    ) {
      let ok = false;
      try {
        const parsed = JSON.parse(text) as {
          error?: { code?: unknown; message?: unknown; requestId?: unknown };
        };
        ok =
          typeof parsed.error?.code === "string" &&
          typeof parsed.error.message === "string" &&
          parsed.error.message.length > 0 &&
          typeof parsed.error.requestId === "string";
      } catch {}
      if (!ok)
        failures.push(
          `${method} ${url} → ${response.status} without the uniform error body: ${text.slice(0, 200)}`,
        );
    }
    if (sent % 50 === 0) await heal();
  }
  const summary = {
    seed: SEED,
    requestsSent: sent,
    routesCovered: covered.size,
    routesKnown: routes.length,
    fiveXx,
    seconds: Math.round((Date.now() - started) / 100) / 10,
    statuses: Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])),
  };
  console.log(`fuzz summary ${JSON.stringify(summary)}`);
  expect(failures.slice(0, 20)).toEqual([]);
  expect(covered.size).toBe(routes.length);
}, 150_000);
