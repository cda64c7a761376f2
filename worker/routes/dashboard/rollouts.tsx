import { getDb } from "../../db/client";
import { AppError } from "../../errors";
import { auditOf, type DashContext } from "../../middleware/session";
import { listNodes } from "../../services/nodes";
import { haltRollout, listRollouts, promoteRollout, rollBackRollout } from "../../services/rollout";
import { gateFigures } from "../../services/rollout-gates";
import { type RolloutPanelView, RolloutsPage } from "../../views/rollouts";
import { dashboardSection, pageContext } from "./app";

export const rolloutPages = dashboardSection();

async function render(c: DashContext, notice?: { kind: "ok" | "error"; text: string }) {
  const db = getDb(c.env.DB);
  const [rows, nodes] = [await listRollouts(db, 10), await listNodes(db)];
  const live = nodes.filter((n) => n.revokedAt === null);
  const panels: RolloutPanelView[] = [];
  for (const rollout of rows) {
    const active = rollout.state === "soaking";
    const figures = active
      ? await gateFigures(c.env, rollout)
      : ((rollout.figures as RolloutPanelView["figures"]) ?? null);
    const ring = new Set(rollout.ringNodes);
    const held = live.filter((n) => !ring.has(n.id) && n.appliedHash === rollout.fromHash).length;
    panels.push({ rollout, figures, held, fleetSize: live.length });
  }
  return c.html(<RolloutsPage page={pageContext(c)} panels={panels} now={Date.now()} notice={notice} />);
}

rolloutPages.get("/", (c) => render(c));

const ACTIONS = {
  promote: (c: DashContext, id: string) => promoteRollout({ env: c.env, id, ctx: auditOf(c) }),
  halt: (c: DashContext, id: string) =>
    haltRollout({ env: c.env, id, reason: "halted by hand from the dashboard", ctx: auditOf(c) }),
  rollback: (c: DashContext, id: string) => rollBackRollout(c.env, id, auditOf(c)),
} as const;

rolloutPages.post("/:id/:action", async (c) => {
  const action = c.req.param("action") as keyof typeof ACTIONS;
  const id = c.req.param("id");
  if (!Object.hasOwn(ACTIONS, action) || !/^ro_[0-9a-z]{8,32}$/.test(id)) {
    throw new AppError("NOT_FOUND", "no such rollout action");
  }
  try {
    const row = await ACTIONS[action](c, id);
    return render(c, { kind: "ok", text: `Rollout ${id}: ${row.state}.` });
  } catch (error) {
    if (error instanceof AppError && error.status < 500)
      return render(c, { kind: "error", text: error.message });
    throw error;
  }
});
