// One error type, one mapper: services throw AppError with a closed set of codes; app.onError
// turns it into {error:{code,message,requestId}} with the status below.

import type { ErrorBody } from "../protocol/wire";

export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  POLICY_INVALID: 422,
  CHUNK_INVALID: 422,
  UNAUTHORIZED: 401,
  ENROLLMENT_KEY_INVALID: 401,
  NODE_UNKNOWN: 401,
  FORBIDDEN: 403,
  IP_NOT_ALLOWED: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  NOT_CONFIGURED: 503,
  UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorDetail {
  path: string;
  message: string;
}

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "AppError";
  }

  get status(): (typeof ERROR_STATUS)[ErrorCode] {
    return ERROR_STATUS[this.code];
  }
}

export function errorBody(
  code: ErrorCode,
  message: string,
  requestId: string,
  details?: ErrorDetail[],
): ErrorBody {
  return { error: { code, message, requestId, ...(details?.length ? { details } : {}) } };
}

/** Formats a zod issue path as `rules[2].match.domains[0]`; shared with the policy validator. */
export { formatPath } from "../protocol/policy/schema";
