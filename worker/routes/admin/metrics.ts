import { createRoute, z } from "@hono/zod-openapi";
import { getDb } from "../../db/client";
import { adminErrors, createRouter, security } from "../../openapi";
import { fleetMetrics } from "../../services/fleet-metrics";

export const metricsRoutes = createRouter();

metricsRoutes.openapi(
  createRoute({
    method: "get",
    path: "/metrics",
    tags: ["nodes"],
    summary: "Fleet metrics in the Prometheus text format (admin or viewer token)",
    description:
      "Nodes by site/status/sync, version skew, spool backlog reported by nodes, ingest lag, rollout state. Scrape with `authorization: Bearer <token>`.",
    security,
    responses: {
      200: {
        description: "Prometheus text exposition format 0.0.4",
        content: { "text/plain": { schema: z.string() } },
      },
      ...adminErrors,
    },
  }),
  async (c) =>
    c.text(await fleetMetrics(getDb(c.env.DB), c.env), 200, {
      "Content-Type": "text/plain; version=0.0.4; charset=utf-8",
      "Cache-Control": "no-store",
    }),
);
