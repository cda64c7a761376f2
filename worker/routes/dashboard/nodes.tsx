import { getDb } from "../../db/client";
import { auditOf, type DashContext } from "../../middleware/session";
import { describeFleetNode, listFleet, parseFleetQuery } from "../../services/fleet";
import { listNodeEvents, revokeNode } from "../../services/nodes";
import { announceRevocation } from "../../services/policy-hub";
import { timeseries } from "../../services/reports";
import { activeRollout, rolloutSync } from "../../services/rollout-active";
import { listSites } from "../../services/sites";
import { listUsers } from "../../services/users";
import { NodePage, NodesPage } from "../../views/nodes";
import { SiteFilter } from "../../views/site-filter";
import { dashboardSection, pageContext } from "./app";
import { confirmFirst } from "./confirm";

export const nodePages = dashboardSection();

nodePages.get("/", async (c) => {
  const query = parseFleetQuery(c.req.query());
  const db = getDb(c.env.DB);
  const fleet = await listFleet({ db, env: c.env, input: query });
  const [sites, rollout] = [await listSites(db), await activeRollout(db)];
  // The site picker keeps the other filters (and starts again at page 1).
  const keep = Object.fromEntries(
    Object.entries(query).filter(([k, v]) => k !== "site" && k !== "page" && v !== undefined),
  ) as Record<string, string>;
  return c.html(
    <NodesPage
      page={pageContext(c)}
      nodes={fleet.nodes.map((n) => rolloutSync(n, rollout))}
      siteFilter={
        <SiteFilter sites={sites.map((s) => s.name)} current={query.site} action="/nodes" hidden={keep} />
      }
      info={{ page: fleet.page, pages: fleet.pages, total: fleet.total }}
      query={query}
      versions={fleet.agentVersions}
      fleetSize={fleet.counts.all ?? 0}
      now={Date.now()}
    />,
  );
});

async function renderNode(c: DashContext, id: string, notice?: string) {
  const db = getDb(c.env.DB);
  const view = await describeFleetNode({ db, env: c.env, id });
  const events = await listNodeEvents(db, id, { limit: 100 });
  const now = Date.now();
  const series = await timeseries(db, { from: now - 24 * 3600_000, to: now, node: id });
  const actors: Record<string, string> = {};
  for (const u of await listUsers(db)) actors[`user:${u.id}`] = u.name;
  return c.html(
    <NodePage
      page={pageContext(c)}
      node={view}
      events={events}
      actors={actors}
      now={now}
      notice={notice}
      series={series}
    />,
  );
}

nodePages.get("/:id", (c) => renderNode(c, c.req.param("id")));

nodePages.post(
  "/:id/revoke",
  confirmFirst({
    back: "/nodes",
    message: async (_f, c) => {
      const node = await describeFleetNode({ db: getDb(c.env.DB), env: c.env, id: c.req.param("id") ?? "" });
      return `Revoke ${node.hostname}? Its token stops working at once; it keeps enforcing its last policy.`;
    },
  }),
  async (c) => {
    const node = await revokeNode({ db: getDb(c.env.DB), id: c.req.param("id"), ctx: auditOf(c) });
    await announceRevocation(c.env, node.id);
    return renderNode(c, node.id, `${node.hostname} is revoked.`);
  },
);
