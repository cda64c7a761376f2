import { getDb } from "../../db/client";
import { listFleet } from "../../services/fleet";
import { OverviewPage } from "../../views/overview";
import { dashboardSection, pageContext } from "./app";

export const overviewPages = dashboardSection();

overviewPages.get("/", async (c) => {
  const fleet = await listFleet({ db: getDb(c.env.DB), env: c.env, all: true });
  return c.html(
    <OverviewPage
      page={pageContext(c)}
      nodes={fleet.nodes}
      latestVersion={fleet.latestVersion}
      now={Date.now()}
    />,
  );
});
