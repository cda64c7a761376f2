import { getDb } from "../../db/client";
import { listFleet } from "../../services/fleet";
import { top } from "../../services/reports";
import { OverviewPage } from "../../views/overview";
import { dashboardSection, pageContext } from "./app";

export const overviewPages = dashboardSection();

overviewPages.get("/", async (c) => {
  const db = getDb(c.env.DB);
  const now = Date.now();
  const [fleet, blocked] = await Promise.all([
    listFleet({ db, env: c.env, all: true, now }),
    top(db, { from: now - 24 * 3600_000, to: now, by: "host", action: "block", limit: 10 }),
  ]);
  return c.html(
    <OverviewPage
      page={pageContext(c)}
      nodes={fleet.nodes}
      latestVersion={fleet.latestVersion}
      now={now}
      topBlocked={blocked.rows}
    />,
  );
});
