import { describe, expect, it } from "vitest";
import { compileDomains, compilePolicy } from "../../protocol/policy/compile";
import { validatePolicy } from "../../protocol/policy/schema";
import { compile, facts } from "./policy-helpers";

const fleetPolicy = {
  lists: {
    berlinLocal: { domains: ["intranet.berlin.example"], sites: ["berlin"] },
    berlinOffice: { cidrs: ["10.1.0.0/16"], sites: ["berlin"] },
    social: { domains: ["social.example"] },
  },
  rules: [
    {
      id: "berlin-games",
      action: "block" as const,
      match: { domains: ["games.example"], sites: ["berlin"] },
    },
    { id: "local", action: "block" as const, match: { domains: ["@berlinLocal", "@social"] } },
    {
      id: "office-video",
      action: "block" as const,
      match: { domains: ["video.example"], clients: ["@berlinOffice"] },
    },
  ],
  defaultAction: "allow" as const,
};

describe("site rules and site-scoped lists", () => {
  it("a rule with sites applies only on nodes of those sites; no site means it never applies", () => {
    const engine = compile(fleetPolicy);
    const games = facts({ host: "games.example" });
    expect(engine.evaluate(games).action).toBe("allow");
    engine.setSite("berlin");
    expect(engine.nodeSite).toBe("berlin");
    expect(engine.evaluate(games)).toMatchObject({ action: "block", rule: { id: "berlin-games" } });
    engine.setSite("paris");
    expect(engine.evaluate(games).action).toBe("allow");
  });

  it("a site-scoped list matches nothing off its sites; other lists in the same field still do", () => {
    const engine = compile(fleetPolicy);
    engine.setSite("paris");
    expect(engine.evaluate(facts({ host: "intranet.berlin.example" })).action).toBe("allow");
    expect(engine.evaluate(facts({ host: "social.example" })).action).toBe("block");
    engine.setSite("berlin");
    expect(engine.evaluate(facts({ host: "intranet.berlin.example" })).action).toBe("block");
  });

  it("site-scoped client lists count only on their sites", () => {
    const engine = compile(fleetPolicy);
    const video = facts({ host: "video.example", client: "10.1.2.3" });
    engine.setSite("berlin");
    expect(engine.evaluate(video).action).toBe("block");
    engine.setSite("paris");
    expect(engine.evaluate(video).action).toBe("allow");
  });

  it("the trace says why a site rule was passed over", () => {
    const engine = compile(fleetPolicy);
    engine.setSite("paris");
    const decision = engine.evaluate(facts({ host: "games.example" }), { trace: true });
    expect(decision.trace?.find((t) => t.step === "berlin-games")).toMatchObject({
      result: "no-match",
      detail: expect.stringContaining("paris"),
    });
  });

  it("works when the domain table was built apart (the agent's worker thread)", () => {
    const result = validatePolicy(fleetPolicy);
    if (!result.ok) throw new Error("invalid");
    const engine = compilePolicy(result.policy, compileDomains(result.policy));
    engine.setSite("berlin");
    expect(engine.evaluate(facts({ host: "intranet.berlin.example" })).action).toBe("block");
  });

  it("validation names the path of a bad or duplicate site and of a scoped list used node-wide", () => {
    const result = validatePolicy({
      lists: { office: { cidrs: ["10.0.0.0/8"], sites: ["a", "a"] } },
      destinations: { allow: ["@office"] },
      rules: [{ id: "r", action: "block", match: { sites: ["no spaces"] } }],
      defaultAction: "allow",
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const paths = result.issues.map((i) => i.path);
    expect(paths).toContain("rules[0].match.sites[0]");
    const again = validatePolicy({
      lists: { office: { cidrs: ["10.0.0.0/8"], sites: ["a", "a"] } },
      destinations: { allow: ["@office"] },
      rules: [],
      defaultAction: "allow",
    });
    expect(again.ok ? [] : again.issues.map((i) => i.path)).toEqual(
      expect.arrayContaining(["destinations.allow[0]", "lists.office.sites[1]"]),
    );
  });
});
