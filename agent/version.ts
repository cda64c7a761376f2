// Replaced at build time by scripts/build-agent.mjs (`--define`); `bun agent/main.ts` runs report a dev version.
declare const FLEETGATE_AGENT_VERSION: string | undefined;

export const AGENT_VERSION: string =
  typeof FLEETGATE_AGENT_VERSION === "string" ? FLEETGATE_AGENT_VERSION : "0.0.0-dev";
