import { config } from "../../config";
import { getDb } from "../../db/client";
import type { DashContext } from "../../middleware/session";
import { describeNode, listNodes } from "../../services/nodes";
import { latestHead } from "../../services/policy";
import type { NodeView } from "../../views/nodes";
import { OverviewPage } from "../../views/overview";
import { dashboardSection, pageContext } from "./app";

/** The fleet as the API's GET /nodes describes it (same services, same rules). */
export async function fleet(c: DashContext) {
  const db = getDb(c.env.DB);
  const [rows, head] = [await listNodes(db), await latestHead(db)];
  const wait = config(c.env).pollWaitSeconds;
  return {
    nodes: rows.map((n) => describeNode(n, head?.version ?? null, wait) as NodeView),
    latest: head?.version ?? null,
  };
}

export const overviewPages = dashboardSection();

overviewPages.get("/", async (c) => {
  const { nodes, latest } = await fleet(c);
  return c.html(<OverviewPage page={pageContext(c)} nodes={nodes} latestVersion={latest} now={Date.now()} />);
});
