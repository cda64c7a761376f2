import { Hono } from "hono";
import uplotJs from "uplot/dist/uPlot.iife.min.js";
import uplotCss from "uplot/dist/uPlot.min.css";
import type { DashEnv } from "../../middleware/session";
import dashboardCss from "../../views/assets/dashboard.css";
import dashboardJs from "../../views/assets/dashboard.js";

// Bundled into the Worker as text by wrangler's Text rule: no CDN, no separate asset upload.
const FILES: Record<string, { body: string; type: string }> = {
  "dashboard.css": { body: dashboardCss, type: "text/css; charset=utf-8" },
  "dashboard.js": { body: dashboardJs, type: "text/javascript; charset=utf-8" },
  "uplot.css": { body: uplotCss, type: "text/css; charset=utf-8" },
  "uplot.js": { body: uplotJs, type: "text/javascript; charset=utf-8" },
};

export const assetRoutes = new Hono<DashEnv>();

assetRoutes.get("/:file", (c) => {
  const file = FILES[c.req.param("file")];
  if (!file) return c.text("not found", 404);
  return c.body(file.body, 200, {
    "Content-Type": file.type,
    // Deploys change these files; an hour keeps pages fast without pinning a stale script.
    "Cache-Control": "public, max-age=3600",
  });
});
