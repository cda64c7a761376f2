import { createRoute, z } from "@hono/zod-openapi";
import { getDb } from "../../db/client";
import { auditContext } from "../../middleware/context";
import {
  adminErrors,
  createRouter,
  ErrorSchema,
  jsonBody,
  jsonResponse,
  notFound,
  security,
} from "../../openapi";
import { getBootstrapSetting, setBootstrapSetting } from "../../services/admin-auth";
import { getAgentAllowlist, setAgentAllowlist } from "../../services/agent-allowlist";
import { createApiToken, listApiTokens, revokeApiToken } from "../../services/api-tokens";
import { searchAudit } from "../../services/audit-search";
import { createEnrollmentKey, listEnrollmentKeys, revokeEnrollmentKey } from "../../services/enrollment";
import { createUser, listUsers, updateUser } from "../../services/users";
import { AuditFilter, IdParam, Instant, Loose, Name, Role } from "./schemas";

export const accessRoutes = createRouter();

const KeyCreate = z
  .strictObject({
    name: Name,
    maxUses: z.number().int().min(1).max(1_000_000).nullable().optional(),
    expiresAt: Instant.nullable().optional(),
    site: z
      .string()
      .min(1)
      .max(64)
      .nullable()
      .optional()
      .openapi({ description: "nodes enrolled with it join this site" }),
  })
  .openapi("EnrollmentKeyCreate");

accessRoutes.openapi(
  createRoute({
    method: "post",
    path: "/enrollment-keys",
    tags: ["enrollment"],
    summary: "Create an enrollment key (the key is shown only in this answer)",
    security,
    request: jsonBody(KeyCreate),
    responses: { 201: jsonResponse(Loose, "Created; `key` is shown once"), ...adminErrors },
  }),
  async (c) =>
    c.json(
      await createEnrollmentKey({ db: getDb(c.env.DB), actor: auditContext(c), input: c.req.valid("json") }),
      201,
    ),
);

accessRoutes.openapi(
  createRoute({
    method: "get",
    path: "/enrollment-keys",
    tags: ["enrollment"],
    summary: "List enrollment keys (never the keys themselves)",
    security,
    responses: { 200: jsonResponse(z.object({ keys: z.array(Loose) }), "Keys"), ...adminErrors },
  }),
  async (c) => c.json({ keys: await listEnrollmentKeys(getDb(c.env.DB)) }, 200),
);

accessRoutes.openapi(
  createRoute({
    method: "delete",
    path: "/enrollment-keys/{id}",
    tags: ["enrollment"],
    summary: "Revoke an enrollment key (enrolled nodes keep working)",
    security,
    request: { params: IdParam("key") },
    responses: { 200: jsonResponse(Loose, "Revoked"), ...notFound, ...adminErrors },
  }),
  async (c) =>
    c.json(
      await revokeEnrollmentKey({ db: getDb(c.env.DB), actor: auditContext(c), input: c.req.valid("param") }),
      200,
    ),
);

const TokenCreate = z
  .strictObject({ name: Name, role: Role, expiresAt: Instant.nullable().optional() })
  .openapi("ApiTokenCreate");

accessRoutes.openapi(
  createRoute({
    method: "post",
    path: "/tokens",
    tags: ["identity"],
    summary: "Create an API token (shown only in this answer)",
    security,
    request: jsonBody(TokenCreate),
    responses: { 201: jsonResponse(Loose, "Created; `token` is shown once"), ...adminErrors },
  }),
  async (c) =>
    c.json(
      await createApiToken({ db: getDb(c.env.DB), actor: auditContext(c), input: c.req.valid("json") }),
      201,
    ),
);

accessRoutes.openapi(
  createRoute({
    method: "get",
    path: "/tokens",
    tags: ["identity"],
    summary: "List API tokens",
    security,
    responses: { 200: jsonResponse(z.object({ tokens: z.array(Loose) }), "Tokens"), ...adminErrors },
  }),
  async (c) => c.json({ tokens: await listApiTokens(getDb(c.env.DB)) }, 200),
);

accessRoutes.openapi(
  createRoute({
    method: "delete",
    path: "/tokens/{id}",
    tags: ["identity"],
    summary: "Revoke an API token",
    security,
    request: { params: IdParam("tok") },
    responses: { 200: jsonResponse(Loose, "Revoked"), ...notFound, ...adminErrors },
  }),
  async (c) =>
    c.json(
      await revokeApiToken({ db: getDb(c.env.DB), actor: auditContext(c), input: c.req.valid("param") }),
      200,
    ),
);

const Allowlist = z
  .strictObject({ enabled: z.boolean(), cidrs: z.array(z.string().max(64)).max(1000) })
  .openapi("AgentAllowlist");

accessRoutes.openapi(
  createRoute({
    method: "get",
    path: "/settings/agent-allowlist",
    tags: ["settings"],
    summary: "The agent allow list",
    security,
    responses: { 200: jsonResponse(Allowlist, "Current list"), ...adminErrors },
  }),
  async (c) => c.json(await getAgentAllowlist(getDb(c.env.DB)), 200),
);

accessRoutes.openapi(
  createRoute({
    method: "put",
    path: "/settings/agent-allowlist",
    tags: ["settings"],
    summary: "Replace the agent allow list (source addresses allowed to call the agent API)",
    security,
    request: jsonBody(Allowlist),
    responses: { 200: jsonResponse(Allowlist, "Saved"), ...adminErrors },
  }),
  async (c) => c.json(await setAgentAllowlist(getDb(c.env.DB), c.req.valid("json"), auditContext(c)), 200),
);

const BootstrapSetting = z.strictObject({ enabled: z.boolean() }).openapi("BootstrapTokenSetting");

accessRoutes.openapi(
  createRoute({
    method: "get",
    path: "/settings/bootstrap-token",
    tags: ["settings"],
    summary: "Whether FLEETGATE_BOOTSTRAP_TOKEN is accepted as an admin token",
    security,
    responses: { 200: jsonResponse(BootstrapSetting, "Current setting"), ...adminErrors },
  }),
  async (c) => c.json(await getBootstrapSetting(getDb(c.env.DB)), 200),
);

accessRoutes.openapi(
  createRoute({
    method: "put",
    path: "/settings/bootstrap-token",
    tags: ["settings"],
    summary: "Switch the bootstrap token off (needs an active admin user) or on again",
    security,
    request: jsonBody(BootstrapSetting),
    responses: {
      200: jsonResponse(BootstrapSetting, "Saved"),
      409: jsonResponse(ErrorSchema, "No active admin user yet"),
      ...adminErrors,
    },
  }),
  async (c) =>
    c.json(
      await setBootstrapSetting({ db: getDb(c.env.DB), actor: auditContext(c), input: c.req.valid("json") }),
      200,
    ),
);

accessRoutes.openapi(
  createRoute({
    method: "get",
    path: "/audit",
    tags: ["identity"],
    summary:
      "The audit log, newest first, with actor and target names and dashboard links; filters by actor, action (or a prefix ending in '.'), target and time; `next` is the `before` of the next page",
    security,
    request: { query: AuditFilter },
    responses: {
      200: jsonResponse(z.object({ entries: z.array(Loose), next: z.number().nullable() }), "Entries"),
      ...adminErrors,
    },
  }),
  async (c) => c.json(await searchAudit({ db: getDb(c.env.DB), input: c.req.valid("query") }), 200),
);

const UserCreate = z
  .strictObject({
    name: z.string().min(1).max(64),
    role: Role,
    password: z.string().min(10).max(1024).optional(),
    email: z.email().max(254).optional(),
  })
  .openapi("UserCreate");
const UserUpdate = z
  .strictObject({
    role: Role.optional(),
    password: z.string().min(10).max(1024).optional(),
    disabled: z.boolean().optional(),
  })
  .refine((v) => Object.keys(v).length > 0, "send at least one of role, password, disabled")
  .openapi("UserUpdate");

accessRoutes.openapi(
  createRoute({
    method: "get",
    path: "/users",
    tags: ["identity"],
    summary: "Dashboard users (never their password hashes)",
    security,
    responses: { 200: jsonResponse(z.object({ users: z.array(Loose) }), "Users"), ...adminErrors },
  }),
  async (c) => c.json({ users: await listUsers(getDb(c.env.DB)) }, 200),
);

accessRoutes.openapi(
  createRoute({
    method: "post",
    path: "/users",
    tags: ["identity"],
    summary: "Create a dashboard user (password hashed server-side with PBKDF2-SHA256)",
    security,
    request: jsonBody(UserCreate),
    responses: { 201: jsonResponse(Loose, "Created"), ...adminErrors },
  }),
  async (c) =>
    c.json(
      await createUser({ db: getDb(c.env.DB), actor: auditContext(c), input: c.req.valid("json") }),
      201,
    ),
);

accessRoutes.openapi(
  createRoute({
    method: "patch",
    path: "/users/{id}",
    tags: ["identity"],
    summary: "Change a user's role or password, or disable/enable them (the last active admin stays)",
    security,
    request: { params: IdParam("usr"), ...jsonBody(UserUpdate) },
    responses: { 200: jsonResponse(Loose, "Updated"), ...notFound, ...adminErrors },
  }),
  async (c) =>
    c.json(
      await updateUser({
        db: getDb(c.env.DB),
        actor: auditContext(c),
        input: { ...c.req.valid("json"), id: c.req.valid("param").id },
      }),
      200,
    ),
);
