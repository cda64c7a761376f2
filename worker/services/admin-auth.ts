import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { apiTokens } from "../db/schema";
import type { Actor } from "../env";
import { AppError } from "../errors";
import { constantTimeEqual, hashSecret } from "./secrets";

const LAST_USED_RESOLUTION_MS = 60_000;

/** Resolves a bearer token to an actor: the bootstrap secret, or a stored API token. */
export async function authenticateBearer(
  db: Db,
  bootstrapToken: string | undefined,
  bearer: string,
  now = Date.now(),
): Promise<Actor> {
  if (bootstrapToken && bootstrapToken.length >= 16 && (await constantTimeEqual(bearer, bootstrapToken))) {
    return { id: "bootstrap", name: "bootstrap token", role: "admin" };
  }
  // Looking up by the hash of a 256-bit secret leaks nothing usable through timing.
  const [token] = await db
    .select()
    .from(apiTokens)
    .where(eq(apiTokens.tokenHash, await hashSecret(bearer)))
    .limit(1);
  if (!token || token.revokedAt !== null || (token.expiresAt !== null && token.expiresAt <= now)) {
    throw new AppError("UNAUTHORIZED", "the API token is unknown, revoked or expired");
  }
  if (token.lastUsedAt === null || now - token.lastUsedAt > LAST_USED_RESOLUTION_MS) {
    await db.update(apiTokens).set({ lastUsedAt: now }).where(eq(apiTokens.id, token.id));
  }
  return { id: `token:${token.id}`, name: token.name, role: token.role };
}

export function bearerFrom(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S{1,512})\s*$/i.exec(header);
  return match?.[1] ?? null;
}
