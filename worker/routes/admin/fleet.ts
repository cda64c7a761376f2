import { createRoute, z } from "@hono/zod-openapi";
import { d1Counter } from "../../db/client";
import { adminErrors, createRouter, jsonResponse, security } from "../../openapi";
import { nodeAuthCacheSize } from "../../services/node-auth";
import { cachedBundleVersions } from "../../services/policy";
import { hubStats } from "../../services/policy-hub";

export const fleetRoutes = createRouter();

const FleetStats = z
  .object({
    isolate: z.object({
      d1Statements: z.number().int(),
      nodeAuthCache: z.number().int(),
      cachedBundles: z.array(z.number().int()),
    }),
    hubs: z.array(
      z.object({
        shard: z.number().int(),
        waiting: z.number().int(),
        pendingSeen: z.number().int(),
        head: z.object({ version: z.number().int(), hash: z.string() }).nullable(),
      }),
    ),
  })
  .openapi("FleetStats");

fleetRoutes.openapi(
  createRoute({
    method: "get",
    path: "/fleet/stats",
    tags: ["nodes"],
    summary:
      "Control-plane figures: parked polls per PolicyHub shard, and this isolate's caches and D1 statements",
    description:
      "d1Statements counts the statements this isolate prepared since it started (a Worker runs many isolates; the local master runs one).",
    security,
    responses: { 200: jsonResponse(FleetStats, "Figures"), ...adminErrors },
  }),
  async (c) =>
    c.json(
      {
        isolate: {
          d1Statements: d1Counter.statements,
          nodeAuthCache: nodeAuthCacheSize(),
          cachedBundles: cachedBundleVersions(),
        },
        hubs: await hubStats(c.env),
      },
      200,
    ),
);
