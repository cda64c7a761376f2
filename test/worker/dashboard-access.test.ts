import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toBase64Url, utf8 } from "../../protocol/encoding";
import { app } from "../../worker/app";
import { setAccessKeySource } from "../../worker/services/access-jwt";
import { sessionFrom } from "./dashboard-helpers";

const TEAM = "acme";
const ISSUER = "https://acme.cloudflareaccess.com";
const AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
const accessEnv = {
  ...env,
  ACCESS_TEAM_DOMAIN: TEAM,
  ACCESS_AUD: AUD,
  ACCESS_ADMINS: "boss@example.com, fleet-admins",
  ACCESS_VIEWERS: "auditor@example.com",
};

const RSA = {
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
};
let teamKey: CryptoKeyPair;
let forgerKey: CryptoKeyPair;

const b64json = (v: unknown) => toBase64Url(utf8(JSON.stringify(v)));

async function jwt(
  claims: Record<string, unknown>,
  options: { key?: CryptoKey; kid?: string; alg?: string } = {},
) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64json({ alg: options.alg ?? "RS256", kid: options.kid ?? "team-key-1", typ: "JWT" });
  const body = b64json({
    aud: [AUD],
    iss: ISSUER,
    iat: now,
    exp: now + 600,
    email: "boss@example.com",
    ...claims,
  });
  const sig = await crypto.subtle.sign(
    "RSASSA-PKCS1-v1_5",
    options.key ?? teamKey.privateKey,
    utf8(`${head}.${body}`),
  );
  return `${head}.${body}.${toBase64Url(new Uint8Array(sig))}`;
}

async function visit(token: string | null, path = "/overview") {
  const headers = new Headers({ "CF-Connecting-IP": "198.51.100.44" });
  if (token) headers.set("Cf-Access-Jwt-Assertion", token);
  const ctx = createExecutionContext();
  const response = await app.fetch(
    new Request(`https://master.test${path}`, { headers, redirect: "manual" }),
    accessEnv,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return response;
}

beforeAll(async () => {
  teamKey = (await crypto.subtle.generateKey(RSA, true, ["sign", "verify"])) as CryptoKeyPair;
  forgerKey = (await crypto.subtle.generateKey(RSA, true, ["sign", "verify"])) as CryptoKeyPair;
  const jwk = (await crypto.subtle.exportKey("jwk", teamKey.publicKey)) as JsonWebKey;
  setAccessKeySource(async (issuer) => {
    expect(issuer).toBe(ISSUER);
    return [{ ...jwk, kid: "team-key-1", alg: "RS256" } as JsonWebKey];
  });
});

afterAll(() => setAccessKeySource(null));

describe("Cloudflare Access single sign-on", () => {
  it("signs in an admin by email: the page renders and a session cookie is set", async () => {
    const r = await visit(await jwt({}));
    expect(r.status).toBe(200);
    expect(sessionFrom(r)).toBeTruthy();
    const html = await r.text();
    expect(html).toContain("boss@example.com");
    expect(html).toMatch(/badge ok">admin/);
  });

  it("maps a group to admin and a listed email to viewer", async () => {
    const byGroup = await visit(await jwt({ email: "ops@example.com", groups: ["fleet-admins"] }));
    expect(byGroup.status).toBe(200);
    expect(await byGroup.text()).toMatch(/badge ok">admin/);
    const viewer = await visit(await jwt({ email: "Auditor@Example.com" }));
    expect(viewer.status).toBe(200);
    expect(await viewer.text()).toMatch(/badge ">viewer/);
  });

  it("refuses an identity with no role", async () => {
    const r = await visit(await jwt({ email: "stranger@example.com" }));
    expect(r.status).toBe(403);
    expect(sessionFrom(r)).toBeNull();
  });

  it("refuses forged, expired, not-yet-valid, wrong-audience, wrong-issuer and unsigned tokens", async () => {
    const now = Math.floor(Date.now() / 1000);
    const valid = await jwt({});
    const [h, b] = valid.split(".");
    const cases: Record<string, string> = {
      "signed by another key": await jwt({}, { key: forgerKey.privateKey }),
      "unknown kid": await jwt({}, { kid: "other" }),
      expired: await jwt({ exp: now - 3600, iat: now - 7200 }),
      "not yet valid": await jwt({ nbf: now + 3600 }),
      "wrong audience": await jwt({ aud: ["someone-elses-app"] }),
      "wrong issuer": await jwt({ iss: "https://evil.cloudflareaccess.com" }),
      "alg none": `${b64json({ alg: "none", kid: "team-key-1" })}.${b}.`,
      "tampered payload": `${h}.${b64json({ aud: [AUD], iss: ISSUER, exp: now + 600, email: "boss@example.com", x: 1 })}.${valid.split(".")[2]}`,
      garbage: "not.a.jwt",
    };
    for (const [name, token] of Object.entries(cases)) {
      const r = await visit(token);
      expect(r.status, name).toBe(401);
      expect(sessionFrom(r), name).toBeNull();
    }
  });

  it("without the header the usual sign-in applies", async () => {
    const r = await visit(null);
    expect(r.status).toBe(303);
  });
});
