import { describe, expect, it } from "vitest";
import { AGENT_VERSION } from "../../agent/version";
import { agentUserAgent, agentVersionFromUserAgent } from "../../protocol/wire";

describe("the agent's User-Agent", () => {
  it("carries the version the master reads back", () => {
    expect(agentUserAgent(AGENT_VERSION)).toBe(`fleetgate-agent/${AGENT_VERSION}`);
    expect(agentVersionFromUserAgent(agentUserAgent(AGENT_VERSION))).toBe(AGENT_VERSION);
    expect(agentVersionFromUserAgent(`${agentUserAgent("1.2.3-rc.1")} (linux-x64)`)).toBe("1.2.3-rc.1");
  });

  it("reads no version from other clients", () => {
    for (const ua of [
      undefined,
      null,
      "",
      "curl/8.0",
      "Mozilla/5.0 fleetgate-agent/1.0",
      "fleetgate-agent/",
    ]) {
      expect(agentVersionFromUserAgent(ua)).toBeUndefined();
    }
  });
});
