// Bodies are read only after the caller is known, and each route takes what it needs.
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signedIn } from "./dashboard-helpers";
import { BASE, BOOTSTRAP, call, expectError } from "./helpers/api";
import { createApiToken } from "./helpers/factories";

const MiB = 1024 * 1024;

/** A chunked body (no Content-Length) that counts how much of it the server pulled. */
function countedBody(total: number) {
  const counter = { pulled: 0 };
  const piece = new Uint8Array(64 * 1024).fill(0x20);
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (counter.pulled >= total) return controller.close();
      counter.pulled += piece.byteLength;
      controller.enqueue(piece);
    },
  });
  return { stream, counter };
}

async function send(path: string, headers: Record<string, string>, total: number) {
  const { stream, counter } = countedBody(total);
  const response = await exports.default.fetch(
    new Request(`${BASE}${path}`, {
      method: "POST",
      headers: { "CF-Connecting-IP": "192.0.2.50", ...headers },
      body: stream,
      redirect: "manual",
      // @ts-expect-error: workerd needs the half-duplex flag for a streamed request body
      duplex: "half",
    }),
  );
  await response.text();
  return { response, pulled: counter.pulled };
}

describe("authenticate before reading bodies", () => {
  it("an anonymous 20 MiB chunked publish is refused before its body is read", async () => {
    const { response, pulled } = await send(
      "/api/v1/policy/versions",
      { "Content-Type": "application/json" },
      20 * MiB,
    );
    expect(response.status).toBe(401);
    expect(pulled).toBeLessThan(2 * MiB);
  });

  it("a wrong token's body is not read either", async () => {
    const { response, pulled } = await send(
      "/api/v1/policy/validate",
      { "Content-Type": "application/json", Authorization: "Bearer fgt_wrong" },
      20 * MiB,
    );
    expect(response.status).toBe(401);
    expect(pulled).toBeLessThan(2 * MiB);
  });

  it("an anonymous dashboard form post is sent to sign in without reading the body", async () => {
    const { response, pulled } = await send(
      "/policy/test",
      { "Content-Type": "application/x-www-form-urlencoded", Origin: BASE },
      20 * MiB,
    );
    expect(response.status).toBe(303);
    expect(pulled).toBeLessThan(2 * MiB);
  });
});

describe("per-route body limits", () => {
  const bigPolicy = (bytes: number) =>
    JSON.stringify({
      policy: { rules: [], defaultAction: "allow", blockPage: { title: "t", body: "x" } },
      pad: "x".repeat(bytes),
    });

  it("a viewer's validate and simulate take small bodies only", async () => {
    const viewer = await createApiToken("viewer");
    for (const path of ["/api/v1/policy/validate", "/api/v1/policy/simulate"]) {
      const r = await call(path, {
        token: viewer.token,
        rawBody: bigPolicy(2 * MiB),
        headers: { "Content-Type": "application/json" },
      });
      await expectError(r, 413, "PAYLOAD_TOO_LARGE");
    }
  });

  it("an admin's publish takes a large body (not 413)", async () => {
    const r = await call("/api/v1/policy/validate", {
      token: BOOTSTRAP,
      rawBody: bigPolicy(2 * MiB),
      headers: { "Content-Type": "application/json" },
    });
    expect(r.status).not.toBe(413);
    await r.text();
  });

  it("a viewer's dashboard policy test form takes a small body only", async () => {
    const s = await signedIn("viewer");
    const r = await exports.default.fetch(
      new Request(`${BASE}/policy/test`, {
        method: "POST",
        headers: {
          "CF-Connecting-IP": "192.0.2.51",
          "Content-Type": "application/x-www-form-urlencoded",
          Origin: BASE,
          Cookie: `__Host-fg_session=${s.cookie}`,
        },
        body: new URLSearchParams({ _csrf: s.csrf, url: "http://example.com/", pad: "x".repeat(2 * MiB) }),
      }),
    );
    expect(r.status).toBe(413);
    await r.text();
  });
});
