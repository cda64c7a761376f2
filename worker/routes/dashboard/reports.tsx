import { getDb } from "../../db/client";
import { listNodeNames } from "../../services/fleet";
import { type ReportRangeView, ReportsPage } from "../../views/reports";
import { dashboardSection, pageContext } from "./app";

export const reportPages = dashboardSection();

const PRESET_MS: Record<string, number> = {
  "1h": 3600_000,
  "24h": 24 * 3600_000,
  "7d": 7 * 24 * 3600_000,
  "30d": 30 * 24 * 3600_000,
};
const MINUTE = 60_000;

/** Range presets end now (rounded to the minute so the charts' URLs stay cacheable); custom is UTC. */
export function rangeFrom(query: Record<string, string | undefined>, now = Date.now()): ReportRangeView {
  const node = query.node?.trim() || undefined;
  if (query.range === "custom") {
    const from = Date.parse(`${query.from ?? ""}Z`);
    const to = Date.parse(`${query.to ?? ""}Z`);
    if (Number.isFinite(from) && Number.isFinite(to) && from < to)
      return { preset: "custom", from, to, node };
  }
  const preset = query.range && PRESET_MS[query.range] ? query.range : "24h";
  const to = Math.ceil(now / MINUTE) * MINUTE;
  return { preset, from: to - PRESET_MS[preset]!, to, node };
}

reportPages.get("/", async (c) => {
  const nodes = await listNodeNames({ db: getDb(c.env.DB) });
  return c.html(
    <ReportsPage
      page={pageContext(c)}
      range={rangeFrom(c.req.query())}
      nodes={nodes.map((n) => ({ id: n.id, hostname: n.hostname }))}
    />,
  );
});
