import { createRoute, z } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { CHUNK_ID_HEADER } from "../../protocol/chunk-id";
import { TALLY_ACCEPTED_HEADER, TALLY_LENGTH_HEADER, TALLY_VERSION } from "../../protocol/chunk-tally";
import { signSiteAssertion } from "../../protocol/site";
import {
  agentVersionFromUserAgent,
  bundleTag,
  EnrollRequest,
  EnrollResponse,
  LogChunkAnswer,
  MAX_POLL_WAIT_SECONDS,
  PolicyBundle,
  StatusReport,
  tagNames,
} from "../../protocol/wire";
import { config } from "../config";
import { getDb } from "../db/client";
import { AppError } from "../errors";
import { clientAddress } from "../middleware/context";
import { nodeAuth } from "../middleware/node-auth";
import { createRouter, ErrorSchema, jsonBody, jsonResponse } from "../openapi";
import { bearerFrom } from "../services/admin-auth";
import { assertAgentAddressAllowed } from "../services/agent-allowlist";
import { enrollNode } from "../services/enrollment";
import { acceptChunk } from "../services/ingest-accept";
import { confirmNode, rememberNodeFields } from "../services/node-auth";
import { statusRow } from "../services/node-status";
import { recordHeartbeat } from "../services/nodes";
import { bundleText, signingKey } from "../services/policy";
import { pollHub, reportStatus } from "../services/policy-hub";
import { hitAddressLimit } from "../services/rate-limit";
import { onNodeReport } from "../services/rollout";
import { pollSiteHeader } from "../services/sites";

const errors = (codes: Record<number, string>) =>
  Object.fromEntries(
    Object.entries(codes).map(([status, description]) => [
      status,
      { description, content: { "application/json": { schema: ErrorSchema } } },
    ]),
  );

const ENROLL_WINDOW_MS = 10 * 60_000;

export const agentRoutes = createRouter();

// Log chunks carry their own streaming limits (see services/ingest.ts); everything else is tiny.
const smallBodies = bodyLimit({
  maxSize: 16 * 1024,
  onError: () => {
    throw new AppError("PAYLOAD_TOO_LARGE", "agent requests are limited to 16 KiB");
  },
});
agentRoutes.use("*", (c, next) => (c.req.path.endsWith("/logs") ? next() : smallBodies(c, next)));

// SafeSquid's "Access Restriction → Allow list", applied before any token is looked at.
agentRoutes.use("*", async (c, next) => {
  await assertAgentAddressAllowed(getDb(c.env.DB), clientAddress(c));
  await next();
});

// Then the node token, once, for every route but enroll (which carries an enrollment key).
for (const path of ["/policy", "/status", "/logs"]) agentRoutes.use(path, nodeAuth);

agentRoutes.openapi(
  createRoute({
    method: "post",
    path: "/enroll",
    tags: ["agent"],
    summary: "Enroll a node with an enrollment key",
    description:
      "A new instanceId creates a node. Re-enrolling an existing one needs the node's current token (`Authorization: Bearer <nodeToken>`) or an admin's restore (POST /api/v1/nodes/{id}/restore); it keeps the node id and rotates the token.",
    request: jsonBody(EnrollRequest),
    responses: {
      201: jsonResponse(EnrollResponse, "Enrolled; the node token is shown only here"),
      ...errors({
        400: "Invalid input",
        401: "ENROLLMENT_KEY_INVALID",
        403: "IP_NOT_ALLOWED, or the node is revoked (an admin restores it)",
        409: "CONFLICT: the instanceId is enrolled; send its current node token as Authorization: Bearer",
        429: "Too many attempts",
      }),
    },
  }),
  async (c) => {
    const db = getDb(c.env.DB);
    const address = clientAddress(c);
    await hitAddressLimit({
      db,
      scope: "enroll",
      address,
      limit: config(c.env).enrollRateLimit,
      windowMs: ENROLL_WINDOW_MS,
    });
    const key = await signingKey(config(c.env).signingSeeds.current);
    // Re-enrolling an existing instance proves identity with the node's current token.
    const result = await enrollNode(
      db,
      c.req.valid("json"),
      address,
      bearerFrom(c.req.header("Authorization")),
    );
    return c.json(
      {
        nodeId: result.nodeId,
        nodeToken: result.nodeToken,
        masterKey: { kid: key.kid, alg: "Ed25519" as const, publicKey: key.publicKey },
        pollWaitSeconds: config(c.env).pollWaitSeconds,
        site: await signSiteAssertion(key, result.nodeId, result.site, result.siteSince),
      },
      201,
    );
  },
);

/** The tag in If-None-Match: a bundle tag (`<generation>.<version>.<hash>`) or a bare hash. */
function knownTag(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^\s*(?:W\/)?"([^"]{1,200})"\s*$/.exec(header);
  return match?.[1] ?? null;
}

agentRoutes.openapi(
  createRoute({
    method: "get",
    path: "/policy",
    tags: ["agent"],
    summary: "Long-poll for the signed policy bundle",
    description:
      "Answers at once when If-None-Match does not name the latest bundle (its tag `<generation>.<version>.<hash>` as sent in ETag; a bare hash from older agents), otherwise waits up to `wait` seconds for a publish.",
    request: {
      query: z.object({ wait: z.coerce.number().int().min(0).max(MAX_POLL_WAIT_SECONDS).default(0) }),
    },
    responses: {
      200: jsonResponse(PolicyBundle, "The newest signed bundle (ETag: `<generation>.<version>.<hash>`)"),
      304: { description: "Nothing newer within `wait`" },
      ...errors({ 400: "Invalid wait", 401: "NODE_UNKNOWN: revoked or unknown", 403: "IP_NOT_ALLOWED" }),
    },
  }),
  async (c) => {
    // Steady state costs no D1 query per poll: the node identity comes from the isolate's cache,
    // the head from the node's PolicyHub shard (which also batches the last-seen writes), and
    // the bundle from the isolate's bundle cache. See docs/scale.md.
    const db = getDb(c.env.DB);
    const node = c.get("node");
    const agent = agentVersionFromUserAgent(c.req.header("User-Agent"));
    const address = clientAddress(c);
    if (node.lastAddress !== address || (agent && node.agentVersion !== agent)) {
      await recordHeartbeat({ db, nodeId: node.id, address, agentVersion: agent });
      rememberNodeFields(node, { lastAddress: address, ...(agent ? { agentVersion: agent } : {}) });
    }
    const { wait } = c.req.valid("query");
    const known = knownTag(c.req.header("If-None-Match"));
    const answer = await pollHub(c.env, node.id, known, wait * 1000);
    // A revoke during the wait ends the poll with 401, as the next poll would.
    if (answer.revoked || wait > 0) await confirmNode(db, node);
    if (answer.revoked) throw new AppError("NODE_UNKNOWN", "this node was revoked: re-enroll it");
    const { head } = answer;
    // The node's site, signed: its site rules depend on it (docs/fleet.md); the hub chose `head` per node.
    c.header(...(await pollSiteHeader(c.env, node)));
    if (!head || tagNames(known, head)) {
      return c.body(null, 304, head ? { ETag: `"${bundleTag(head)}"` } : {});
    }
    const bundle = await bundleText(db, head.version, head.hash);
    if (!bundle) throw new AppError("NOT_FOUND", `policy version ${head.version} vanished`);
    return c.body(bundle.text, 200, {
      "Content-Type": "application/json; charset=utf-8",
      ETag: `"${bundleTag(head)}"`,
      "Cache-Control": "no-store",
    });
  },
);

agentRoutes.openapi(
  createRoute({
    method: "post",
    path: "/status",
    tags: ["agent"],
    summary: "Report the applied version (ACK) or a rejection (NACK) and spool figures",
    request: jsonBody(StatusReport),
    responses: {
      204: { description: "Recorded" },
      ...errors({ 400: "Invalid input", 401: "NODE_UNKNOWN", 403: "IP_NOT_ALLOWED" }),
    },
  }),
  async (c) => {
    const node = c.get("node");
    // Batched with the other reports reaching the node's hub shard: a publish's ACK wave and
    // the fleet's heartbeats cost a few D1 batches per second, not two statements per report.
    await reportStatus(c.env, statusRow(node.id, c.req.valid("json"), clientAddress(c), Date.now()));
    await onNodeReport(c.env, node.id, c.req.valid("json").state);
    return c.body(null, 204);
  },
);

agentRoutes.openapi(
  createRoute({
    method: "post",
    path: "/logs",
    tags: ["agent"],
    summary: "Upload one sealed access-log chunk (gzip NDJSON); counted exactly once",
    description:
      "Headers: Content-Encoding: gzip, X-Fleetgate-Chunk: <epoch>.<seq>. Limits: 1 MiB compressed, 16 MiB inflated, 50,000 records. " +
      "A tallied upload (X-Fleetgate-Tally-Length: n, Content-Type: application/x-fleetgate-tallied-chunk) sends n bytes of the tally's gzip JSON, then the chunk's gzip; the master counts the tally (checked, a sample verified against the records). Answers carry X-Fleetgate-Tally: 1.",
    request: {
      headers: z.object({ "x-fleetgate-chunk": z.string().openapi({ example: "lz3k9a.42" }) }),
      body: { required: false, content: { "application/x-ndjson": { schema: z.string() } } },
    },
    responses: {
      200: jsonResponse(LogChunkAnswer, "Accepted, or a duplicate of an accepted chunk"),
      ...errors({
        400: "Bad chunk id or body",
        401: "NODE_UNKNOWN",
        403: "IP_NOT_ALLOWED",
        413: "Too large: split the chunk",
        415: "Not gzip",
        422: "CHUNK_INVALID: a record does not match the schema; the message names the line",
        503: "UNAVAILABLE: not buffered (busy or failing); send the same chunk again",
      }),
    },
  }),
  async (c) => {
    const db = getDb(c.env.DB);
    const node = c.get("node");
    const input = {
      chunkId: c.req.header(CHUNK_ID_HEADER),
      encoding: c.req.header("Content-Encoding"),
      length: c.req.header("Content-Length"),
      tallyLength: c.req.header(TALLY_LENGTH_HEADER),
      body: c.req.raw.body,
    };
    const answer = await acceptChunk({
      db,
      env: c.env,
      node,
      input,
      waitUntil: (work) => c.executionCtx.waitUntil(work),
    });
    // Tells the agent it may send tallies from now on (docs/reports.md, Tallied chunks).
    c.header(TALLY_ACCEPTED_HEADER, String(TALLY_VERSION));
    return c.json(answer, 200);
  },
);
