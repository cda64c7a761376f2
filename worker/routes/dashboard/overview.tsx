import { getDb } from "../../db/client";
import { listFleet } from "../../services/fleet";
import { timeseries, top } from "../../services/reports";
import { OverviewPage } from "../../views/overview";
import { dashboardSection, pageContext } from "./app";

export const overviewPages = dashboardSection();

overviewPages.get("/", async (c) => {
  const db = getDb(c.env.DB);
  const now = Date.now();
  const day = { from: now - 24 * 3600_000, to: now };
  const [fleet, blocked, series] = await Promise.all([
    listFleet({ db, env: c.env, all: true, now }),
    top(db, { ...day, by: "host", action: "block", limit: 10 }),
    timeseries(db, day),
  ]);
  return c.html(
    <OverviewPage
      page={pageContext(c)}
      nodes={fleet.nodes}
      latestVersion={fleet.latestVersion}
      now={now}
      topBlocked={blocked.rows}
      series={series}
    />,
  );
});
