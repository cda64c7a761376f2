/** A published version as nodes see it: what the hubs hold and a poll compares (docs/architecture.md). */
export type PolicyHead = { version: number; hash: string; generation: number };
