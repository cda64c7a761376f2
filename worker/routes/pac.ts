import { Hono } from "hono";
import { getDb } from "../db/client";
import type { AppEnv } from "../env";
import { AppError } from "../errors";
import { PAC_MAX_AGE_SECONDS, sitePac } from "../services/pac";

/** Public PAC files (no token: browsers fetch them unauthenticated); they carry no secrets. */
export const pacRoutes = new Hono<AppEnv>();

pacRoutes.get("/:file", async (c) => {
  const match = /^([a-z0-9][a-z0-9_-]{0,63})\.pac$/i.exec(c.req.param("file"));
  if (!match) throw new AppError("NOT_FOUND", "PAC files are /pac/<site>.pac");
  const { text } = await sitePac({ db: getDb(c.env.DB), env: c.env, site: match[1]! });
  return c.body(text, 200, {
    "Content-Type": "application/x-ns-proxy-autoconfig",
    "Cache-Control": `public, max-age=${PAC_MAX_AGE_SECONDS}`,
  });
});
