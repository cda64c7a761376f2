import { describe, expect, it } from "vitest";
import { page, signedIn } from "./dashboard-helpers";

describe("dashboard pages render", () => {
  it("every page answers 200 for an admin", async () => {
    const s = await signedIn("admin");
    for (const path of [
      "/overview",
      "/nodes",
      "/settings/keys",
      "/settings/allowlist",
      "/settings/users",
      "/settings/tokens",
      "/settings/audit",
    ]) {
      const r = await page(path, { cookie: s.cookie });
      const text = await r.text();
      expect(r.status, `${path}: ${text.slice(0, 500)}`).toBe(200);
    }
  });
});
