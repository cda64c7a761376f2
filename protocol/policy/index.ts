// The policy engine's public API: validate (master, at publish), compile + evaluate (agent, per
// request; master, for simulate), credentials, and the building blocks other parts reuse.

export { CidrSet, isValidCidr, type ParsedIp, parseIp } from "./cidr";
export { compilePolicy, simulate } from "./compile";
export { parseDomainPattern, toAsciiHost } from "./domain-name";
export { type DomainMatch, DomainTable } from "./domain-table";
export { buildDomainTable, DomainTableBuilder } from "./domain-table-builder";
export { hashPassword, parsePasswordHash, verifyPassword } from "./password";
export { checkUrlRegex } from "./regex-safety";
export { inSchedule, isValidTimeZone, type ScheduleSpec } from "./schedule";
export {
  Policy,
  type PolicyInput,
  type PolicyIssue,
  type PolicyRule,
  type ValidationResult,
  validatePolicy,
} from "./schema";
export type {
  CompiledPolicy,
  Decision,
  DecisionReason,
  RequestFacts,
  Scheme,
  TraceStep,
  VerifiedUser,
} from "./types";
