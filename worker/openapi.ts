import { OpenAPIHono, z } from "@hono/zod-openapi";
import { ErrorBody } from "../protocol/wire";
import type { AppEnv } from "./env";
import { AppError, formatPath } from "./errors";

/** An OpenAPIHono whose request validation failures become our uniform VALIDATION_FAILED error. */
export function createRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (result.success) return;
      const details = result.error.issues.slice(0, 50).map((issue) => ({
        path: `${result.target}${issue.path.length ? `.${formatPath(issue.path)}` : ""}`,
        message: issue.message,
      }));
      const first = details[0]!;
      throw new AppError("VALIDATION_FAILED", `${first.path}: ${first.message}`, details);
    },
  });
}

// The one error body (protocol/wire.ts), named for the OpenAPI document. Wrapped with this
// module's `z`: only schemas made after @hono/zod-openapi loads carry `.openapi()`.
export const ErrorSchema = z.object(ErrorBody.shape).openapi("Error");

const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: ErrorSchema } },
});

export const adminErrors = {
  400: errorResponse("Invalid input; `details` names each JSON path"),
  401: errorResponse("Missing, unknown, revoked or expired token"),
  403: errorResponse("The token's role may not do this"),
  413: errorResponse("Body too large"),
};

export const notFound = { 404: errorResponse("No such resource") };

export const jsonBody = <T extends z.ZodType>(schema: T, description?: string) => ({
  body: { required: true, description, content: { "application/json": { schema } } },
});

export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

export const security = [{ bearer: [] }];
