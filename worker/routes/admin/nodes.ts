import { createRoute, z } from "@hono/zod-openapi";
import { config } from "../../config";
import { getDb } from "../../db/client";
import { auditContext } from "../../middleware/context";
import { adminErrors, createRouter, jsonResponse, notFound, security } from "../../openapi";
import { describeFleetNode, listFleet } from "../../services/fleet";
import { describeNode, listNodeEvents, nodeViewFor, restoreNode, revokeNode } from "../../services/nodes";
import { latestHead } from "../../services/policy";
import { announceRevocation } from "../../services/policy-hub";
import { activeRollout, rolloutSync } from "../../services/rollout-active";
import { IdParam, Loose, Pagination } from "./schemas";

export const nodeRoutes = createRouter();

const NodeView = z
  .object({
    id: z.string(),
    hostname: z.string(),
    status: z.enum(["online", "offline", "revoked"]),
    sync: z.enum(["in-sync", "behind", "rejected", "never", "held"]),
    site: z.string().nullable(),
    appliedVersion: z.number().nullable(),
    latestVersion: z.number().nullable(),
    lastError: z.string().nullable(),
    lastSeenAt: z.number().nullable(),
  })
  .passthrough()
  .openapi("Node");

nodeRoutes.openapi(
  createRoute({
    method: "get",
    path: "/nodes",
    tags: ["nodes"],
    summary: "The fleet: each node's state, applied versus latest version, last error",
    description:
      "`site` lists one site's nodes. While a rollout soaks, nodes outside its ring show sync `held`.",
    security,
    request: { query: z.object({ site: z.string().min(1).max(64).optional() }) },
    responses: { 200: jsonResponse(z.object({ nodes: z.array(NodeView) }), "Nodes"), ...adminErrors },
  }),
  async (c) => {
    const db = getDb(c.env.DB);
    const { site } = c.req.valid("query");
    const fleet = await listFleet({ db, env: c.env, input: { site }, all: true });
    const rollout = await activeRollout(db);
    const role = c.get("actor").role;
    return c.json({ nodes: fleet.nodes.map((n) => nodeViewFor(role, rolloutSync(n, rollout))) }, 200);
  },
);

nodeRoutes.openapi(
  createRoute({
    method: "get",
    path: "/nodes/{id}",
    tags: ["nodes"],
    summary: "One node",
    security,
    request: { params: IdParam("node") },
    responses: { 200: jsonResponse(NodeView, "Node"), ...notFound, ...adminErrors },
  }),
  async (c) => {
    const view = await describeFleetNode({ db: getDb(c.env.DB), env: c.env, id: c.req.valid("param").id });
    return c.json(nodeViewFor(c.get("actor").role, view), 200);
  },
);

nodeRoutes.openapi(
  createRoute({
    method: "delete",
    path: "/nodes/{id}",
    tags: ["nodes"],
    summary: "Revoke a node: its token stops working at once; it keeps enforcing its last policy",
    security,
    request: { params: IdParam("node") },
    responses: { 200: jsonResponse(Loose, "Revoked"), ...notFound, ...adminErrors },
  }),
  async (c) => {
    const db = getDb(c.env.DB);
    const node = await revokeNode({ db, id: c.req.valid("param").id, ctx: auditContext(c) });
    await announceRevocation(c.env, node.id);
    return c.json(describeNode(node, null, config(c.env).pollWaitSeconds), 200);
  },
);

nodeRoutes.openapi(
  createRoute({
    method: "post",
    path: "/nodes/{id}/restore",
    tags: ["nodes"],
    summary:
      "Restore a node: lifts a revocation and lets it re-enroll once without its token within the next hour",
    security,
    request: { params: IdParam("node") },
    responses: { 200: jsonResponse(NodeView, "Restored"), ...notFound, ...adminErrors },
  }),
  async (c) => {
    const db = getDb(c.env.DB);
    const node = await restoreNode({ db, id: c.req.valid("param").id, ctx: auditContext(c) });
    const head = await latestHead(db);
    return c.json(describeNode(node, head?.version ?? null, config(c.env).pollWaitSeconds), 200);
  },
);

nodeRoutes.openapi(
  createRoute({
    method: "get",
    path: "/nodes/{id}/events",
    tags: ["nodes"],
    summary: "A node's sync event timeline, newest first",
    security,
    request: { params: IdParam("node"), query: Pagination },
    responses: {
      200: jsonResponse(z.object({ events: z.array(Loose) }), "Events"),
      ...notFound,
      ...adminErrors,
    },
  }),
  async (c) =>
    c.json(
      { events: await listNodeEvents(getDb(c.env.DB), c.req.valid("param").id, c.req.valid("query")) },
      200,
    ),
);
