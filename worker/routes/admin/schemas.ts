import { z } from "@hono/zod-openapi";

export const Role = z.enum(["admin", "viewer"]);

/** ISO 8601 text or epoch milliseconds, as the design's admin API accepts for times. */
export const Instant = z
  .union([z.number().int().positive(), z.iso.datetime({ offset: true })])
  .transform((v) => (typeof v === "number" ? v : Date.parse(v)))
  .openapi({ description: "epoch ms or ISO 8601", example: "2026-12-31T23:59:59Z" });

export const Name = z.string().trim().min(1).max(100);

export const Pagination = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  before: z.coerce.number().int().positive().optional(),
});

export const IdParam = (prefix: string) =>
  z.object({ id: z.string().regex(new RegExp(`^${prefix}_[0-9a-z]{8,32}$`), `an id like ${prefix}_…`) });

export const Loose = z.record(z.string(), z.unknown());

const MAX_INSTANT = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** A query-string time: epoch milliseconds or ISO 8601, between 1970 and 9999-12-31. */
export const QueryInstant = z
  .string()
  .max(40)
  .transform((v, ctx) => {
    const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(n)) {
      ctx.addIssue({ code: "custom", message: "epoch ms or ISO 8601 expected" });
      return z.NEVER;
    }
    // Beyond year 9999 a time cannot be written as ISO 8601 (exports, bucket labels).
    if (n < 0 || n > MAX_INSTANT) {
      ctx.addIssue({ code: "custom", message: "a time between 1970 and 9999-12-31 expected" });
      return z.NEVER;
    }
    return n;
  })
  .optional();

/** A site's name (sites.name): what the sites API creates and the reports' `site` filter takes. */
export const SiteName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/i, "1-64 letters, digits, '_' or '-', starting with a letter or digit");

/** GET /api/v1/audit: a page of the audit log and its filters (services/audit-search.ts). */
export const AuditFilter = Pagination.extend({
  actor: z
    .string()
    .regex(/^[a-z]+(:[a-z0-9_-]{1,64})?$/, "an actor id: user:usr_…, token:tok_…, bootstrap, system:rollout")
    .optional(),
  action: z
    .string()
    .regex(
      /^[a-z-]{1,40}(\.[a-z-]{0,40})?$/,
      "an action (policy.publish) or a prefix ending in '.' (policy.)",
    )
    .optional(),
  target: z.string().min(1).max(200).optional(),
  from: QueryInstant,
  to: QueryInstant,
});
