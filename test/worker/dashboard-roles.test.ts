import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../worker/app";
import { READ_ONLY_ROUTES } from "../../worker/middleware/can-write";
import { listAudit } from "../../worker/services/audit";
import { db, page, signedIn, submit } from "./dashboard-helpers";
import { call } from "./helpers/api";
import { enrollNode, publish } from "./helpers/factories";

// Every POST the dashboard has, found from the router itself so a new form cannot be missed.
const OPEN = new Set(["/setup", "/login"]);
const dashboardPosts = () =>
  [
    ...new Set(
      app.routes.filter((r) => r.method === "POST" && !r.path.startsWith("/api/")).map((r) => r.path),
    ),
  ].filter((p) => !OPEN.has(p) && !READ_ONLY_ROUTES.has(p));

describe("viewer role on the dashboard", () => {
  it("finds the dashboard's write routes", () => {
    const posts = dashboardPosts();
    expect(posts).toContain("/policy/publish");
    expect(posts).toContain("/settings/keys");
    expect(posts.length).toBeGreaterThan(20);
  });

  it("refuses a viewer on every dashboard write, and changes nothing", async () => {
    const viewer = await signedIn("viewer");
    const { nodeId } = await enrollNode();
    await publish({ rules: [], defaultAction: "allow" });
    const auditBefore = (await listAudit(db(), { limit: 500 })).length;
    for (const path of dashboardPosts()) {
      const concrete = path
        .replace(":id", path.startsWith("/nodes") ? nodeId : "usr_0000000000000000")
        .replace(":index", "0")
        .replace(":version", "1");
      const r = await submit(concrete, viewer, { name: "x", message: "x", to: "0" });
      expect(r.status, `${concrete}: ${(await r.text()).slice(0, 200)}`).toBe(403);
    }
    expect((await listAudit(db(), { limit: 500 })).length).toBe(auditBefore);
    const node = await call(`/api/v1/nodes/${nodeId}`);
    expect((await node.json<{ status: string }>()).status).not.toBe("revoked");
  });

  it("lets a viewer read every page and test a request, without write buttons", async () => {
    const viewer = await signedIn("viewer");
    await publish({
      rules: [{ id: "r1", action: "block", match: { domains: ["example.org"] } }],
      defaultAction: "allow",
    });
    for (const path of [
      "/overview",
      "/nodes",
      "/policy",
      "/policy/history",
      "/policy/test",
      "/reports",
      "/settings/keys",
      "/settings/users",
      "/settings/tokens",
      "/settings/audit",
      "/settings/allowlist",
    ]) {
      const r = await page(path, { cookie: viewer.cookie });
      expect(r.status, path).toBe(200);
      const html = await r.text();
      expect(html, path).not.toMatch(
        />\s*(Publish|Create key|Add rule|Create token|Add user|Roll back|Revoke|Delete)\s*</,
      );
    }
    const tested = await submit("/policy/test", viewer, {
      url: "https://www.example.org/",
      client: "10.1.2.3",
      method: "GET",
      target: "latest",
    });
    expect(tested.status).toBe(200);
    expect(await tested.text()).toContain("r1");
  });

  it("refuses a viewer's session-authenticated API writes too", async () => {
    const viewer = await signedIn("viewer");
    const r = await exports.default.fetch(
      new Request("https://master.test/api/v1/enrollment-keys", {
        method: "POST",
        headers: {
          Cookie: `__Host-fg_session=${viewer.cookie}`,
          "X-CSRF-Token": viewer.csrf,
          "Content-Type": "application/json",
        },
        body: JSON.stringify({ name: "nope" }),
      }),
    );
    expect(r.status).toBe(403);
  });
});
