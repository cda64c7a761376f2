// The one node:zlib function the Worker uses (nodejs_compat provides it natively); the worker
// tsconfig does not load all of @types/node for it.
declare module "node:zlib" {
  export function gunzipSync(data: Uint8Array, options?: { maxOutputLength?: number }): Uint8Array;
}
