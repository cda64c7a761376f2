import { describe, expect, it } from "vitest";
import { app } from "../../worker/app";
import { page, signedIn, submit } from "./dashboard-helpers";
import { enrollNode, publish } from "./helpers/factories";

// Junk an admin's browser (or a hand-made request) could send to any dashboard form.
const JUNK_FORMS: Record<string, string>[] = [
  {},
  { name: "", message: "", to: "", index: "", version: "" },
  { name: "x".repeat(20_000), message: "\u0000\u0001", json: "{", policy: "[]", role: "root" },
  { index: "-1", to: "999999", version: "0", domains: "not a domain\n\n..", cidrs: "10.0.0.0/99" },
  { json: JSON.stringify({ rules: "x" }), expiresAt: "yesterday", maxUses: "-3", enabled: "maybe" },
  { from: "abc", to: "def", url: "ftp://x", client: "not-an-ip", tz: "Mars/Olympus" },
];

describe("no 500 from any dashboard form", () => {
  it("answers junk on every dashboard POST with a non-5xx status", async () => {
    const admin = await signedIn("admin");
    const { nodeId } = await enrollNode();
    await publish({
      rules: [{ id: "r1", action: "block", match: { domains: ["a.example"] } }],
      defaultAction: "allow",
    });
    const posts = [
      ...new Set(
        app.routes.filter((r) => r.method === "POST" && !r.path.startsWith("/api/")).map((r) => r.path),
      ),
    ].filter((p) => p !== "/logout" && p !== "/setup" && p !== "/login");
    expect(posts.length).toBeGreaterThan(20);
    for (const path of posts) {
      for (const id of [nodeId, "usr_0000000000000000", "junk id/.."]) {
        const concrete = path
          .replace(":id", encodeURIComponent(id))
          .replace(":index", "7")
          .replace(":version", "1");
        for (const form of JUNK_FORMS) {
          const res = await submit(concrete, admin, form);
          expect(res.status, `${concrete} ${JSON.stringify(form).slice(0, 80)}`).toBeLessThan(500);
        }
      }
    }
    for (const path of ["/login", "/setup"]) {
      for (const form of JUNK_FORMS) {
        expect((await page(path, { form })).status, path).toBeLessThan(500);
      }
    }
  });

  it("answers junk query strings on every dashboard page with a non-5xx status", async () => {
    const admin = await signedIn("admin");
    const gets = [
      ...new Set(
        app.routes.filter((r) => r.method === "GET" && !r.path.startsWith("/api/")).map((r) => r.path),
      ),
    ].filter((p) => !p.includes("*"));
    for (const path of gets) {
      const concrete = path
        .replace(":id", "node_zzzzzzzzzzzzzzzz")
        .replace(":version", "abc")
        .replace(":name", "x");
      for (const query of [
        "",
        "?from=abc&to=-1&node=../../x",
        "?page=-5&before=NaN&v=%00",
        "?from=1&to=99999999999999",
      ]) {
        const res = await page(`${concrete}${query}`, { cookie: admin.cookie });
        expect(res.status, `${concrete}${query}`).toBeLessThan(500);
      }
    }
  });
});
