import { createRoute, z } from "@hono/zod-openapi";
import { getDb } from "../../db/client";
import { adminErrors, createRouter, jsonResponse, security } from "../../openapi";
import {
  exportRequests,
  type RequestFilter,
  resolveWindow,
  searchRequests,
} from "../../services/request-search";
import { Loose, QueryInstant, SiteName } from "./schemas";

export const requestRoutes = createRouter();

const Field = z.string().trim().min(1).max(260).optional();

export const RequestQuery = z.object({
  from: QueryInstant.openapi({ description: "epoch ms or ISO 8601; default: `to` − 1 h" }),
  to: QueryInstant.openapi({ description: "epoch ms or ISO 8601; default: now. At most 6 h after `from`" }),
  node: z
    .string()
    .regex(/^node_[0-9a-z]{8,32}$/)
    .optional(),
  site: SiteName.optional().openapi({ description: "the site's nodes (its members now); not with `node`" }),
  client: Field,
  user: Field,
  host: Field.openapi({ description: "suffix match: example.com matches it and every subdomain" }),
  action: z.enum(["allow", "block", "auth", "error"]).optional(),
  rule: Field,
  status: z
    .string()
    .regex(/^(\d{3}|[1-5]xx)$/, "a status (403) or a class (4xx)")
    .optional(),
  cursor: z.string().max(200).optional(),
});
const SearchQuery = RequestQuery.extend({ limit: z.coerce.number().int().min(1).max(500).default(100) });

export function filterOf(q: z.infer<typeof RequestQuery>): RequestFilter {
  const status = q.status?.endsWith("xx")
    ? { min: Number(q.status[0]) * 100, max: Number(q.status[0]) * 100 + 99 }
    : q.status
      ? { min: Number(q.status), max: Number(q.status) }
      : undefined;
  return {
    ...resolveWindow(q.from, q.to),
    node: q.node,
    site: q.site,
    client: q.client,
    user: q.user,
    host: q.host,
    action: q.action,
    rule: q.rule,
    status,
  };
}

requestRoutes.openapi(
  createRoute({
    method: "get",
    path: "/requests",
    tags: ["requests"],
    summary:
      "Request search over the raw log archive: a window of ≤ 6 h, filters, newest first, paginated by an opaque cursor",
    security,
    request: { query: SearchQuery },
    responses: {
      200: jsonResponse(Loose, "{from, to, rows, nextCursor, partial, scanned}"),
      ...adminErrors,
    },
  }),
  async (c) => {
    const q = c.req.valid("query");
    return c.json(
      await searchRequests({
        db: getDb(c.env.DB),
        bucket: c.env.LOG_ARCHIVE,
        filter: filterOf(q),
        limit: q.limit,
        cursor: q.cursor,
      }),
      200,
    );
  },
);

requestRoutes.openapi(
  createRoute({
    method: "get",
    path: "/requests/export.ndjson",
    tags: ["requests"],
    summary:
      "Stream the same filter as NDJSON in acceptance order; every line carries a `cursor`, the last line is {end, more, cursor}",
    security,
    request: { query: RequestQuery },
    responses: {
      200: {
        description: "application/x-ndjson",
        content: { "application/x-ndjson": { schema: z.string() } },
      },
      ...adminErrors,
    },
  }),
  async (c) => {
    const q = c.req.valid("query");
    const filter = filterOf(q);
    const lines = exportRequests({
      db: getDb(c.env.DB),
      bucket: c.env.LOG_ARCHIVE,
      filter,
      cursor: q.cursor,
    });
    // Pull-driven: a chunk is read from R2 only when the client has taken the previous lines.
    const first = await lines.next(); // a bad cursor fails here, before the 200 is committed
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        if (!first.done) controller.enqueue(encoder.encode(first.value));
        else controller.close();
      },
      async pull(controller) {
        const next = await lines.next();
        if (next.done) controller.close();
        else controller.enqueue(encoder.encode(next.value));
      },
      async cancel() {
        await lines.return(undefined);
      },
    });
    const stamp = new Date(filter.from).toISOString().slice(0, 16).replace(":", "");
    // zod-openapi types an `application/x-ndjson` response as JSON; the body is the stream.
    return c.body(body, 200, {
      "Content-Type": "application/x-ndjson; charset=utf-8",
      "Content-Disposition": `attachment; filename="fleetgate-requests-${stamp}.ndjson"`,
      "Cache-Control": "no-store",
    }) as never;
  },
);
