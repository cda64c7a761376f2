import { describe, expect, it } from "vitest";
import { checkLogRecord } from "../../protocol/log-record-check";
import { LogRecord } from "../../protocol/wire";
import { record } from "./helpers/logs";

// Values tried in every field: each type, the schema's edges and just past them.
const PROBES: unknown[] = [
  undefined,
  null,
  true,
  0,
  -0,
  -1,
  1.5,
  999,
  1000,
  65535,
  65536,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 2,
  Number.POSITIVE_INFINITY,
  Number.NaN,
  "",
  "x",
  "http",
  "connect",
  "allow",
  "block",
  "auth",
  "error",
  "x".repeat(32),
  "x".repeat(33),
  "x".repeat(40),
  "x".repeat(41),
  "x".repeat(64),
  "x".repeat(65),
  "x".repeat(100),
  "x".repeat(101),
  "x".repeat(200),
  "x".repeat(201),
  "x".repeat(260),
  "x".repeat(261),
  "x".repeat(4096),
  "x".repeat(4097),
  [],
  {},
];

describe("the fast LogRecord check", () => {
  it("answers exactly as the zod schema for every field set to every probe, and for unknown keys", () => {
    const base = record({ user: "alice", rule: "r1", path: "/p" }) as Record<string, unknown>;
    const cases: unknown[] = [base, record(), null, [], "x", 1];
    for (const key of Object.keys(base)) {
      for (const probe of PROBES) cases.push({ ...base, [key]: probe });
      const { [key]: _, ...without } = base;
      cases.push(without);
    }
    cases.push({ ...base, extra: 1 }, JSON.parse(`{"__proto__": 1, ${JSON.stringify(base).slice(1)}`));
    let fastAccepted = 0;
    for (const value of cases) {
      const fast = checkLogRecord(value);
      const zod = LogRecord.safeParse(value);
      expect({ value, success: fast.success }).toEqual({ value, success: zod.success });
      if (fast.success && zod.success) {
        expect(fast.data).toEqual(zod.data);
        fastAccepted++;
      }
    }
    expect(cases.length).toBeGreaterThan(500);
    expect(fastAccepted).toBeGreaterThan(50);
  });
});
