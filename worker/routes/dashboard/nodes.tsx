import { config } from "../../config";
import { getDb } from "../../db/client";
import { auditOf, type DashContext } from "../../middleware/session";
import { describeNode, getNode, listNodeEvents, revokeNode } from "../../services/nodes";
import { latestHead } from "../../services/policy";
import { announceRevocation } from "../../services/policy-hub";
import { activeRollout, rolloutSync } from "../../services/rollout-active";
import { listSites } from "../../services/sites";
import { paginate } from "../../views/components";
import { NodePage, NodesPage, type NodeView } from "../../views/nodes";
import { SiteFilter } from "../../views/site-filter";
import { dashboardSection, pageContext } from "./app";
import { fleet } from "./overview";

export const nodePages = dashboardSection();

nodePages.get("/", async (c) => {
  const { nodes } = await fleet(c);
  const site = c.req.query("site") || undefined;
  const db = getDb(c.env.DB);
  const [sites, rollout] = [await listSites(db), await activeRollout(db)];
  const shown = (site ? nodes.filter((n) => n.site === site) : nodes).map((n) => rolloutSync(n, rollout));
  const { rows, info } = paginate(shown, Number(c.req.query("page") ?? 1));
  const filter = <SiteFilter sites={sites.map((s) => s.name)} current={site} action="/nodes" />;
  return c.html(
    <NodesPage page={pageContext(c)} nodes={rows} info={info} now={Date.now()} filter={filter} />,
  );
});

async function renderNode(c: DashContext, id: string, notice?: string) {
  const db = getDb(c.env.DB);
  const node = await getNode(db, id);
  const head = await latestHead(db);
  const view = describeNode(node, head?.version ?? null, config(c.env).pollWaitSeconds) as NodeView;
  const events = await listNodeEvents(db, id, { limit: 100 });
  return c.html(
    <NodePage page={pageContext(c)} node={view} events={events} now={Date.now()} notice={notice} />,
  );
}

nodePages.get("/:id", (c) => renderNode(c, c.req.param("id")));

nodePages.post("/:id/revoke", async (c) => {
  const node = await revokeNode(getDb(c.env.DB), c.req.param("id"), auditOf(c));
  await announceRevocation(c.env, node.id);
  return renderNode(c, node.id, `${node.hostname} is revoked.`);
});
