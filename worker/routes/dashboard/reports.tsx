import { getDb } from "../../db/client";
import { AppError } from "../../errors";
import type { DashContext } from "../../middleware/session";
import { listNodeNames } from "../../services/fleet";
import { summary, TOP_DIMENSIONS, type TopDimension, timeseries, top } from "../../services/reports";
import { listSites } from "../../services/sites";
import { type ReportRangeView, ReportsPage, TopPage } from "../../views/reports";
import { ACTIONS } from "../../views/reports/shared";
import { fromLocalInput } from "../../views/time";
import { dashboardSection, pageContext } from "./app";

export const reportPages = dashboardSection();

const PRESET_MS: Record<string, number> = {
  "1h": 3600_000,
  "24h": 24 * 3600_000,
  "7d": 7 * 24 * 3600_000,
  "30d": 30 * 24 * 3600_000,
};
const MINUTE = 60_000;
const TOP_PAGE = 50;
const MAX_TOP_ROWS = 5000;

/** Range presets end now (rounded to the minute); custom ranges are read in the person's zone. */
export function rangeFrom(
  query: Record<string, string | undefined>,
  zone = "UTC",
  now = Date.now(),
): ReportRangeView {
  const node = query.node?.trim() || undefined;
  // A node is narrower than its site: with both picked the report is the node's.
  const site = node ? undefined : query.site?.trim() || undefined;
  const action = ACTIONS.find((a) => a === query.action);
  if (query.range === "custom") {
    const from = fromLocalInput(query.from, zone);
    const to = fromLocalInput(query.to, zone);
    if (Number.isFinite(from) && Number.isFinite(to) && from < to)
      return { preset: "custom", from, to, node, site, action };
  }
  const preset = query.range && PRESET_MS[query.range] ? query.range : "24h";
  const to = Math.ceil(now / MINUTE) * MINUTE;
  return { preset, from: to - PRESET_MS[preset]!, to, node, site, action };
}

const rangeOf = (c: DashContext) => rangeFrom(c.req.query(), pageContext(c).tz?.zone);

reportPages.get("/", async (c) => {
  const db = getDb(c.env.DB);
  const range = rangeOf(c);
  const filter = { from: range.from, to: range.to, node: range.node, site: range.site };
  const [nodes, sites, totals, series, ...tops] = await Promise.all([
    listNodeNames({ db }),
    listSites(db),
    summary(db, filter),
    timeseries(db, filter),
    ...TOP_DIMENSIONS.map((by) => top(db, { ...filter, by, action: range.action, limit: 10 })),
  ]);
  return c.html(
    <ReportsPage
      page={pageContext(c)}
      range={range}
      nodes={nodes}
      sites={sites.map((s) => s.name)}
      summary={totals}
      series={series}
      tops={tops.map((t) => ({ by: t.by, rows: t.rows, other: t.other }))}
      incomplete={totals.incomplete}
    />,
  );
});

reportPages.get("/top/:by", async (c) => {
  const by = TOP_DIMENSIONS.find((d) => d === c.req.param("by")) as TopDimension | undefined;
  if (!by) throw new AppError("NOT_FOUND", "no such top list");
  const range = rangeOf(c);
  const pageNo = Math.min(
    Math.max(1, Number.parseInt(c.req.query("page") ?? "1", 10) || 1),
    MAX_TOP_ROWS / TOP_PAGE,
  );
  // Top lists rank in SQL with a LIMIT: page n reads n pages (+1 row to know there is more).
  const result = await top(getDb(c.env.DB), {
    from: range.from,
    to: range.to,
    node: range.node,
    site: range.site,
    by,
    action: range.action,
    limit: pageNo * TOP_PAGE + 1,
  });
  const rows = result.rows.slice((pageNo - 1) * TOP_PAGE, pageNo * TOP_PAGE);
  return c.html(
    <TopPage
      page={pageContext(c)}
      range={range}
      by={by}
      rows={rows}
      pageNo={pageNo}
      hasMore={result.rows.length > pageNo * TOP_PAGE}
      size={TOP_PAGE}
    />,
  );
});
