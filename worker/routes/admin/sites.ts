import { createRoute, z } from "@hono/zod-openapi";
import { config } from "../../config";
import { getDb } from "../../db/client";
import { AppError } from "../../errors";
import { auditContext } from "../../middleware/context";
import { adminErrors, createRouter, jsonBody, jsonResponse, notFound, security } from "../../openapi";
import { describeNode, getNode, nodeViewFor } from "../../services/nodes";
import { latestHead } from "../../services/policy";
import {
  createSite,
  deleteSite,
  getSite,
  listSites,
  MAX_BYPASS,
  setNodePublicAddress,
  setNodeSite,
  updateSite,
} from "../../services/sites";
import { IdParam, Loose, SiteName } from "./schemas";

export const siteRoutes = createRouter();

const Settings = z.strictObject({
  bypass: z.array(z.string().min(1).max(300)).max(MAX_BYPASS).optional(),
  allowDirect: z.boolean().optional(),
});
const SiteCreate = z
  .strictObject({
    name: SiteName,
    description: z.string().max(500).optional(),
    settings: Settings.optional(),
  })
  .openapi("SiteCreate");
const SiteUpdate = z
  .strictObject({ description: z.string().max(500).optional(), settings: Settings.optional() })
  .openapi("SiteUpdate");
const NameParam = z.object({ name: SiteName });
// host:port as clients reach the node: a DNS name or an IP literal ([v6] in brackets), port 1-65535.
const ProxyAddress = z
  .string()
  .max(260)
  .regex(
    /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):([1-9]\d{0,4})$/,
    "host:port (a DNS name or an IP address, [v6] in brackets)",
  )
  .refine((v) => Number(v.slice(v.lastIndexOf(":") + 1)) <= 65_535, "port must be 1-65535");

siteRoutes.openapi(
  createRoute({
    method: "get",
    path: "/sites",
    tags: ["sites"],
    summary: "Sites with their PAC settings and node counts",
    security,
    responses: { 200: jsonResponse(z.object({ sites: z.array(Loose) }), "Sites"), ...adminErrors },
  }),
  async (c) => c.json({ sites: await listSites(getDb(c.env.DB)) }, 200),
);

siteRoutes.openapi(
  createRoute({
    method: "post",
    path: "/sites",
    tags: ["sites"],
    summary: "Create a site (its name is what policies and the PAC URL use; it cannot be renamed)",
    security,
    request: jsonBody(SiteCreate),
    responses: { 201: jsonResponse(Loose, "Created"), ...adminErrors },
  }),
  async (c) => c.json(await createSite(getDb(c.env.DB), c.req.valid("json"), auditContext(c)), 201),
);

siteRoutes.openapi(
  createRoute({
    method: "get",
    path: "/sites/{name}",
    tags: ["sites"],
    summary: "One site",
    security,
    request: { params: NameParam },
    responses: { 200: jsonResponse(Loose, "Site"), ...notFound, ...adminErrors },
  }),
  async (c) => c.json(await getSite(getDb(c.env.DB), c.req.valid("param").name), 200),
);

siteRoutes.openapi(
  createRoute({
    method: "patch",
    path: "/sites/{name}",
    tags: ["sites"],
    summary: "Change a site's description or PAC settings (bypass networks, DIRECT fallback)",
    security,
    request: { params: NameParam, ...jsonBody(SiteUpdate) },
    responses: { 200: jsonResponse(Loose, "Updated"), ...notFound, ...adminErrors },
  }),
  async (c) =>
    c.json(
      await updateSite(getDb(c.env.DB), c.req.valid("param").name, c.req.valid("json"), auditContext(c)),
      200,
    ),
);

siteRoutes.openapi(
  createRoute({
    method: "delete",
    path: "/sites/{name}",
    tags: ["sites"],
    summary: "Delete a site that no node or enrollment key names any more",
    security,
    request: { params: NameParam },
    responses: { 204: { description: "Deleted" }, ...notFound, ...adminErrors },
  }),
  async (c) => {
    await deleteSite(getDb(c.env.DB), c.req.valid("param").name, auditContext(c));
    return c.body(null, 204);
  },
);

const NodePatch = z
  .strictObject({
    site: SiteName.nullable().optional().openapi({ description: "the node's site; null: none" }),
    publicAddress: ProxyAddress.nullable()
      .optional()
      .openapi({ description: "host:port clients use in PAC files; null: from the reported listen address" }),
  })
  .openapi("NodePatch");

siteRoutes.openapi(
  createRoute({
    method: "patch",
    path: "/nodes/{id}",
    tags: ["nodes"],
    summary: "Move a node to another site, or set the proxy address PAC files publish for it",
    description: "The node learns its new site at its next poll (signed site assertion, docs/fleet.md).",
    security,
    request: { params: IdParam("node"), ...jsonBody(NodePatch) },
    responses: { 200: jsonResponse(Loose, "Updated node"), ...notFound, ...adminErrors },
  }),
  async (c) => {
    const db = getDb(c.env.DB);
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    if (body.site === undefined && body.publicAddress === undefined) {
      throw new AppError("VALIDATION_FAILED", "json: name site or publicAddress", [
        { path: "json", message: "name site or publicAddress" },
      ]);
    }
    if (body.site !== undefined) await setNodeSite(db, id, body.site, auditContext(c));
    if (body.publicAddress !== undefined)
      await setNodePublicAddress(db, id, body.publicAddress, auditContext(c));
    const fresh = await getNode(db, id);
    const head = await latestHead(db);
    return c.json(
      nodeViewFor(
        c.get("actor").role,
        describeNode(fresh, head?.version ?? null, config(c.env).pollWaitSeconds),
      ),
      200,
    );
  },
);
