import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { getDb } from "../../db/client";
import type { AppEnv } from "../../env";
import { auditContext } from "../../middleware/context";
import { adminErrors, createRouter, jsonBody, jsonResponse, notFound, security } from "../../openapi";
import {
  checkPolicy,
  getVersion,
  listPolicyVersions,
  type PolicyWrite,
  publishPolicy,
  rollbackPolicy,
  signingSeeds,
  startSeries,
} from "../../services/policy";
import { diffVersions } from "../../services/policy-compare";
import { announceInBackground } from "../../services/policy-hub";
import { simulateAgainst } from "../../services/simulate";
import { Instant, Loose, Pagination } from "./schemas";

export const policyRoutes = createRouter();

const PolicyDocument = z.record(z.string(), z.unknown()).openapi("Policy", {
  description: "Policy language v1 (see docs/policy.md); validated with JSON paths in `details`",
});
const Version = z.coerce.number().int().positive();
const Message = z.string().trim().min(1).max(500);

const Published = z
  .object({ version: z.number(), hash: z.string(), unchanged: z.boolean(), generation: z.number() })
  .openapi("Published");
const OptionalMessage = {
  required: false,
  content: { "application/json": { schema: z.strictObject({ message: Message.optional() }) } },
};

/** What a publish, rollback or new series needs from the request besides its input. */
const policyWrite = (c: Context<AppEnv>): PolicyWrite => ({
  db: getDb(c.env.DB),
  seeds: signingSeeds(c.env),
  actor: auditContext(c),
  // The publish answers while the shards release their waiters (services/policy-hub.ts).
  notify: (v) => announceInBackground(c.executionCtx, c.env, v),
});

/** Rollback and series take an optional body: `{message}` or nothing at all. */
const optionalMessage = (c: Context<AppEnv>, body: () => { message?: string | undefined }) =>
  c.req.header("Content-Type") ? body().message : undefined;

const policyErrors = {
  422: {
    description: "POLICY_INVALID: `details` lists each problem with its JSON path",
    content: { "application/json": { schema: z.object({ error: Loose }) } },
  },
};

policyRoutes.openapi(
  createRoute({
    method: "post",
    path: "/policy/validate",
    tags: ["policy"],
    summary: "Validate a policy without publishing it",
    security,
    request: jsonBody(z.strictObject({ policy: PolicyDocument })),
    responses: {
      200: jsonResponse(z.object({ valid: z.literal(true) }), "Valid"),
      ...policyErrors,
      ...adminErrors,
    },
  }),
  async (c) => {
    await checkPolicy(getDb(c.env.DB), c.req.valid("json").policy);
    return c.json({ valid: true as const }, 200);
  },
);

policyRoutes.openapi(
  createRoute({
    method: "post",
    path: "/policy/versions",
    tags: ["policy"],
    summary: "Publish a new immutable, signed version; waiting nodes get it within a second",
    security,
    request: jsonBody(z.strictObject({ policy: PolicyDocument, message: Message })),
    responses: {
      201: jsonResponse(Published, "Published"),
      200: jsonResponse(Published, "Identical to the latest version; nothing new was created"),
      ...policyErrors,
      ...adminErrors,
    },
  }),
  async (c) => {
    const result = await publishPolicy({ ...policyWrite(c), input: c.req.valid("json") });
    return c.json(result, result.unchanged ? 200 : 201);
  },
);

policyRoutes.openapi(
  createRoute({
    method: "get",
    path: "/policy/versions",
    tags: ["policy"],
    summary: "Published versions, newest first",
    security,
    request: { query: Pagination },
    responses: {
      200: jsonResponse(z.object({ versions: z.array(Loose), latest: z.number().nullable() }), "Versions"),
      ...adminErrors,
    },
  }),
  async (c) => c.json(await listPolicyVersions({ db: getDb(c.env.DB), input: c.req.valid("query") }), 200),
);

policyRoutes.openapi(
  createRoute({
    method: "get",
    path: "/policy/versions/{version}",
    tags: ["policy"],
    summary: "One version with its policy and signature",
    security,
    request: { params: z.object({ version: Version }) },
    responses: { 200: jsonResponse(Loose, "Version"), ...notFound, ...adminErrors },
  }),
  async (c) => c.json(await getVersion(getDb(c.env.DB), c.req.valid("param").version), 200),
);

policyRoutes.openapi(
  createRoute({
    method: "get",
    path: "/policy/diff",
    tags: ["policy"],
    summary: "A readable per-section diff between two versions",
    security,
    request: { query: z.object({ from: Version, to: Version }) },
    responses: { 200: jsonResponse(Loose, "Diff"), ...notFound, ...adminErrors },
  }),
  async (c) => {
    return c.json(await diffVersions({ db: getDb(c.env.DB), input: c.req.valid("query") }), 200);
  },
);

policyRoutes.openapi(
  createRoute({
    method: "post",
    path: "/policy/versions/{version}/rollback",
    tags: ["policy"],
    summary: "Republish an old version's content as a new version",
    security,
    request: {
      params: z.object({ version: Version }),
      body: OptionalMessage,
    },
    responses: {
      201: jsonResponse(Published, "Republished"),
      200: jsonResponse(Published, "Already the latest content"),
      ...notFound,
      ...adminErrors,
    },
  }),
  async (c) => {
    const message = optionalMessage(c, () => c.req.valid("json"));
    const result = await rollbackPolicy({
      ...policyWrite(c),
      input: { version: c.req.valid("param").version, message },
    });
    return c.json(result, result.unchanged ? 200 : 201);
  },
);

policyRoutes.openapi(
  createRoute({
    method: "post",
    path: "/policy/series",
    tags: ["policy"],
    summary:
      "Start a new signed series: republish the latest policy under a higher generation (after restoring the database from a backup, or after switching the signing key)",
    security,
    request: { body: OptionalMessage },
    responses: {
      201: jsonResponse(Published, "Published as the first version of the new series"),
      ...notFound,
      ...adminErrors,
    },
  }),
  async (c) => {
    const message = optionalMessage(c, () => c.req.valid("json"));
    return c.json(await startSeries({ ...policyWrite(c), input: { message } }), 201);
  },
);

const SimulateBody = z
  .strictObject({
    version: z.number().int().positive().optional(),
    policy: PolicyDocument.optional(),
    request: z.strictObject({
      client: z.union([z.ipv4(), z.ipv6()]),
      // Above the node's 64 KiB request-head limit, so any URL a node can see can be simulated.
      url: z.string().max(128 * 1024),
      method: z
        .string()
        .regex(/^[A-Za-z]{1,20}$/)
        .optional(),
      user: z.string().max(200).optional(),
      groups: z.array(z.string().max(100)).max(100).optional(),
      at: Instant.optional(),
      /** The site of the node that would see the request (rules with match.sites, site-scoped lists). */
      site: z
        .string()
        .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/i)
        .optional(),
    }),
  })
  .openapi("SimulateRequest");

policyRoutes.openapi(
  createRoute({
    method: "post",
    path: "/policy/simulate",
    tags: ["policy"],
    summary: "Evaluate a described request against a version (default: latest) or a draft policy",
    security,
    request: jsonBody(SimulateBody),
    responses: {
      200: jsonResponse(Loose, "{action, reason, rule, trace, facts}"),
      ...notFound,
      ...policyErrors,
      ...adminErrors,
    },
  }),
  async (c) => c.json(await simulateAgainst({ db: getDb(c.env.DB), input: c.req.valid("json") }), 200),
);
