import { createRoute, z } from "@hono/zod-openapi";
import { getDb } from "../../db/client";
import { auditContext } from "../../middleware/context";
import { adminErrors, createRouter, jsonBody, jsonResponse, notFound, security } from "../../openapi";
import {
  evaluateRollouts,
  getRollout,
  haltRollout,
  listRollouts,
  promoteRollout,
  rollBackRollout,
  startRollout,
} from "../../services/rollout";
import { gateFigures } from "../../services/rollout-gates";
import { Loose } from "./schemas";

export const rolloutRoutes = createRouter();

const Ring = z
  .union([
    z.strictObject({ site: z.string().min(1).max(64) }),
    z.strictObject({
      nodes: z
        .array(z.string().regex(/^node_[0-9a-z]{8,32}$/))
        .min(1)
        .max(1_000),
    }),
    z.strictObject({ percent: z.number().min(0.01).max(100) }),
  ])
  .openapi({
    description: "the first ring: one site, a list of node ids, or a percentage (by a hash of the node id)",
  });

const RolloutCreate = z
  .strictObject({
    policy: z.record(z.string(), z.unknown()),
    message: z.string().trim().min(1).max(500),
    ring: Ring,
    soakSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600),
    gates: z
      .strictObject({
        maxErrorShareIncrease: z.number().min(0).max(1).optional(),
        maxBlockedShareIncrease: z.number().min(0).max(1).optional(),
        minRequests: z.number().int().min(0).max(1_000_000).optional(),
      })
      .optional(),
  })
  .openapi("RolloutCreate");

const IdParam = z.object({ id: z.string().regex(/^ro_[0-9a-z]{8,32}$/, "an id like ro_…") });
const HaltBody = z.strictObject({ reason: z.string().trim().min(1).max(500).optional() });

rolloutRoutes.openapi(
  createRoute({
    method: "post",
    path: "/rollouts",
    tags: ["rollouts"],
    summary: "Publish a policy as a staged rollout: the ring gets it first, the rest after the soak",
    description:
      "Answers the rollout (state soaking). Refused (409) while another rollout is active. Gates: any NACK in the ring; the ring's error share and blocked share since it applied compared with the hour before.",
    security,
    request: jsonBody(RolloutCreate),
    responses: { 201: jsonResponse(Loose, "Started"), ...notFound, ...adminErrors },
  }),
  async (c) => c.json(await startRollout(c.env, c.req.valid("json"), auditContext(c)), 201),
);

rolloutRoutes.openapi(
  createRoute({
    method: "get",
    path: "/rollouts",
    tags: ["rollouts"],
    summary: "Recent rollouts, newest first, with the gate figures of the last evaluation",
    security,
    responses: { 200: jsonResponse(z.object({ rollouts: z.array(Loose) }), "Rollouts"), ...adminErrors },
  }),
  async (c) => c.json({ rollouts: await listRollouts(getDb(c.env.DB)) }, 200),
);

rolloutRoutes.openapi(
  createRoute({
    method: "get",
    path: "/rollouts/{id}",
    tags: ["rollouts"],
    summary: "One rollout; an active one with its gate figures as of now",
    security,
    request: { params: IdParam },
    responses: { 200: jsonResponse(Loose, "Rollout"), ...notFound, ...adminErrors },
  }),
  async (c) => {
    const row = await getRollout(getDb(c.env.DB), c.req.valid("param").id);
    const live = row.state === "soaking" ? await gateFigures(c.env, row) : null;
    return c.json({ ...row, ...(live ? { figures: live } : {}) }, 200);
  },
);

rolloutRoutes.openapi(
  createRoute({
    method: "post",
    path: "/rollouts/{id}/promote",
    tags: ["rollouts"],
    summary: "Promote now: every held node gets the rollout's version",
    security,
    request: { params: IdParam },
    responses: { 200: jsonResponse(Loose, "Promoted"), ...notFound, ...adminErrors },
  }),
  async (c) =>
    c.json(await promoteRollout({ env: c.env, id: c.req.valid("param").id, ctx: auditContext(c) }), 200),
);

rolloutRoutes.openapi(
  createRoute({
    method: "post",
    path: "/rollouts/{id}/halt",
    tags: ["rollouts"],
    summary:
      "Halt: the ring goes back to the previous version (republished as a new one); held nodes keep it",
    security,
    request: {
      params: IdParam,
      body: { required: false, content: { "application/json": { schema: HaltBody } } },
    },
    responses: { 200: jsonResponse(Loose, "Halted"), ...notFound, ...adminErrors },
  }),
  async (c) => {
    const body = c.req.valid("json") ?? {};
    return c.json(
      await haltRollout({
        env: c.env,
        id: c.req.valid("param").id,
        reason: body.reason ?? "halted by hand",
        ctx: auditContext(c),
      }),
      200,
    );
  },
);

rolloutRoutes.openapi(
  createRoute({
    method: "post",
    path: "/rollouts/{id}/rollback",
    tags: ["rollouts"],
    summary:
      "Roll back: a promoted rollout's fleet (or an active one's ring) goes back to the previous version",
    security,
    request: { params: IdParam },
    responses: { 200: jsonResponse(Loose, "Rolled back"), ...notFound, ...adminErrors },
  }),
  async (c) => c.json(await rollBackRollout(c.env, c.req.valid("param").id, auditContext(c)), 200),
);

rolloutRoutes.openapi(
  createRoute({
    method: "post",
    path: "/rollouts/evaluate",
    tags: ["rollouts"],
    summary: "Evaluate the gates now (the cron trigger does this every minute)",
    security,
    responses: {
      200: jsonResponse(Loose, "The active rollout after the check, or {rollout:null}"),
      ...adminErrors,
    },
  }),
  async (c) => c.json({ rollout: await evaluateRollouts(c.env) }, 200),
);
