import { createRoute, z } from "@hono/zod-openapi";
import { getDb } from "../../db/client";
import { adminErrors, createRouter, jsonResponse, security } from "../../openapi";
import { exportReportCsv } from "../../services/report-export";
import { resolveRange, summary, TOP_DIMENSIONS, timeseries, top } from "../../services/reports";
import { Loose, QueryInstant, SiteName } from "./schemas";

export const reportRoutes = createRouter();

const RangeQuery = z.object({
  from: QueryInstant,
  to: QueryInstant,
  node: z
    .string()
    .regex(/^node_[0-9a-z]{8,32}$/)
    .optional(),
  site: SiteName.optional().openapi({
    description: "the nodes of one site (not with node; an unknown site is a 400)",
  }),
});
const TopQuery = RangeQuery.extend({
  by: z.enum(TOP_DIMENSIONS),
  action: z.enum(["allow", "block", "auth", "error"]).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(20),
});
const ExportQuery = TopQuery.partial({ by: true }).extend({
  report: z.enum(["summary", "timeseries", "top"]),
});

const filterOf = (q: z.infer<typeof RangeQuery>) => ({
  ...resolveRange(q.from, q.to),
  node: q.node,
  site: q.site,
});

reportRoutes.openapi(
  createRoute({
    method: "get",
    path: "/reports/summary",
    tags: ["reports"],
    summary:
      "Totals over a range (default: last 24 h): requests, allowed, blocked, bytes, distinct clients/users, nodes; `incomplete` names reporting gaps",
    security,
    request: { query: RangeQuery },
    responses: { 200: jsonResponse(Loose, "Summary"), ...adminErrors },
  }),
  async (c) => c.json(await summary(getDb(c.env.DB), filterOf(c.req.valid("query"))), 200),
);

reportRoutes.openapi(
  createRoute({
    method: "get",
    path: "/reports/timeseries",
    tags: ["reports"],
    summary: "Requests, allowed, blocked and bytes per bucket (bucket chosen from the range)",
    security,
    request: { query: RangeQuery },
    responses: { 200: jsonResponse(Loose, "{bucketMs, points, incomplete}"), ...adminErrors },
  }),
  async (c) => c.json(await timeseries(getDb(c.env.DB), filterOf(c.req.valid("query"))), 200),
);

reportRoutes.openapi(
  createRoute({
    method: "get",
    path: "/reports/top",
    tags: ["reports"],
    summary: "Top hosts, clients, users, rules or nodes by requests, optionally for one action",
    security,
    request: { query: TopQuery },
    responses: { 200: jsonResponse(Loose, "{by, rows, incomplete}"), ...adminErrors },
  }),
  async (c) => {
    const q = c.req.valid("query");
    return c.json(
      await top(getDb(c.env.DB), { ...filterOf(q), by: q.by, action: q.action, limit: q.limit }),
      200,
    );
  },
);

reportRoutes.openapi(
  createRoute({
    method: "get",
    path: "/reports/export.csv",
    tags: ["reports"],
    summary: "CSV of summary, timeseries or top (same parameters as the JSON reports)",
    security,
    request: { query: ExportQuery },
    responses: {
      200: { description: "text/csv", content: { "text/csv": { schema: z.string() } } },
      ...adminErrors,
    },
  }),
  async (c) => {
    const q = c.req.valid("query");
    const { csv, fileName } = await exportReportCsv({
      db: getDb(c.env.DB),
      input: { report: q.report, filter: filterOf(q), by: q.by, action: q.action, limit: q.limit },
    });
    return c.body(csv, 200, {
      "Content-Type": "text/csv; charset=utf-8",
      "Content-Disposition": `attachment; filename="${fileName}"`,
    });
  },
);
