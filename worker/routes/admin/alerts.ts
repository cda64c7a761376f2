// Alerts over the admin API: the webhook configuration (as Settings → Alerts), the alerts fired,
// a test alert and resolving by hand. So a fleet's alerting can be set up by a script, not only
// by clicking.
import { createRoute, z } from "@hono/zod-openapi";
import { ALERT_KINDS } from "../../../protocol/alerts";
import { getDb } from "../../db/client";
import { auditContext } from "../../middleware/context";
import { adminErrors, createRouter, jsonBody, jsonResponse, security } from "../../openapi";
import {
  alertConfigView,
  CONDITION_KINDS,
  listAlerts,
  resolveAlerts,
  saveAlertConfig,
  sendTestAlert,
} from "../../services/alerts";
import { Loose } from "./schemas";

export const alertRoutes = createRouter();

const AlertConfigView = z
  .object({
    url: z.string().nullable(),
    kinds: z.array(z.enum(ALERT_KINDS)),
    backlogMinutes: z.number().int(),
    secretSet: z.boolean(),
  })
  .openapi("AlertConfig");

const AlertConfigInput = z
  .strictObject({
    url: z.string().max(2048).openapi({ description: "the webhook; empty switches delivery off" }),
    secret: z
      .string()
      .max(256)
      .optional()
      .openapi({ description: "16–256 characters; left out or empty keeps the stored one" }),
    clearSecret: z.boolean().optional(),
    kinds: z.array(z.enum(CONDITION_KINDS)).max(CONDITION_KINDS.length),
    backlogMinutes: z.number().int().min(1).max(10_080),
  })
  .openapi("AlertConfigInput");

alertRoutes.openapi(
  createRoute({
    method: "get",
    path: "/settings/alerts",
    tags: ["settings"],
    summary: "The alert webhook's configuration (never its secret: only whether one is set)",
    security,
    responses: { 200: jsonResponse(AlertConfigView, "Current configuration"), ...adminErrors },
  }),
  async (c) => c.json(await alertConfigView({ db: getDb(c.env.DB) }), 200),
);

alertRoutes.openapi(
  createRoute({
    method: "put",
    path: "/settings/alerts",
    tags: ["settings"],
    summary: "Set the alert webhook: URL, shared secret, which conditions alert, backlog threshold",
    security,
    request: jsonBody(AlertConfigInput),
    responses: { 200: jsonResponse(AlertConfigView, "Saved"), ...adminErrors },
  }),
  async (c) =>
    c.json(
      await saveAlertConfig({ db: getDb(c.env.DB), audit: auditContext(c), input: c.req.valid("json") }),
      200,
    ),
);

const AlertList = z.strictObject({
  open: z
    .enum(["true", "false"])
    .optional()
    .openapi({ description: "true: only open alerts; false: only resolved ones" }),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

alertRoutes.openapi(
  createRoute({
    method: "get",
    path: "/alerts",
    tags: ["alerts"],
    summary: "Alerts fired, newest first, with their delivery (sent, failed and when it is tried again, off)",
    security,
    request: { query: AlertList },
    responses: { 200: jsonResponse(z.object({ alerts: z.array(Loose) }), "Alerts"), ...adminErrors },
  }),
  async (c) => {
    const { open, limit } = c.req.valid("query");
    const rows = await listAlerts({
      db: getDb(c.env.DB),
      limit,
      open: open === undefined ? undefined : open === "true",
    });
    return c.json({ alerts: rows }, 200);
  },
);

alertRoutes.openapi(
  createRoute({
    method: "post",
    path: "/alerts/test",
    tags: ["alerts"],
    summary: "Send a test alert now (never retried: it answers whether the webhook works now)",
    security,
    responses: { 200: jsonResponse(Loose, "How the delivery went"), ...adminErrors },
  }),
  async (c) =>
    c.json(
      await sendTestAlert({
        db: getDb(c.env.DB),
        env: c.env,
        by: auditContext(c).actor.name,
        via: "the API",
      }),
      200,
    ),
);

const ResolveInput = z
  .strictObject({
    ids: z
      .array(z.string().regex(/^alr_[0-9a-z]{8,32}$/, "an id like alr_…"))
      .min(1)
      .max(500),
  })
  .openapi("AlertResolve");

alertRoutes.openapi(
  createRoute({
    method: "post",
    path: "/alerts/resolve",
    tags: ["alerts"],
    summary: "Resolve open alerts by id (a person dealt with them); a failed delivery stops being retried",
    security,
    request: jsonBody(ResolveInput),
    responses: {
      200: jsonResponse(z.object({ resolved: z.number().int() }), "How many of them were open"),
      ...adminErrors,
    },
  }),
  async (c) => {
    const { ids } = c.req.valid("json");
    return c.json(
      { resolved: await resolveAlerts({ db: getDb(c.env.DB), audit: auditContext(c), ids }) },
      200,
    );
  },
);
