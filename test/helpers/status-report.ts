// A node's status report (POST /api/agent/v1/status) as the agent sends it: "applied", an empty
// spool; tests override what they are about. Plain TypeScript, for the worker pool and Node tests.
export const statusReport = (overrides: Record<string, unknown> = {}) => ({
  appliedVersion: 1,
  appliedHash: "h",
  state: "applied",
  proxy: { kind: "builtin", listen: "127.0.0.1:3128", version: "builtin/0.1.0" },
  spool: { pendingChunks: 0, pendingBytes: 0, oldestPendingAt: null, droppedRecords: 0 },
  agentVersion: "0.1.0",
  uptimeSeconds: 12,
  ...overrides,
});
