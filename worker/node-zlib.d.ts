// The node:zlib functions the Worker and its tests use (nodejs_compat provides them natively); the
// worker tsconfig does not load all of @types/node for them. gzipSync: the workerd tests build
// tallies with the agent's own code (agent/spool/tally.ts).
declare module "node:zlib" {
  export function gunzipSync(data: Uint8Array, options?: { maxOutputLength?: number }): Uint8Array;
  export function gzipSync(data: Uint8Array | string): Uint8Array;
}
