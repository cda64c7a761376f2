// The policy's history and test pages, mounted on the /policy section (policy.tsx): versions with
// their diff and live "applied on x of y", rollback to a version, and the request simulator.
import type { Hono } from "hono";
import { parseIp } from "../../../protocol/policy/cidr";
import { getDb } from "../../db/client";
import { AppError } from "../../errors";
import { auditOf, type DashEnv } from "../../middleware/session";
import { appliedCount } from "../../services/fleet";
import {
  getVersion,
  latestHead,
  listVersions,
  parsePolicy,
  rollbackPolicy,
  signingSeeds,
} from "../../services/policy";
import { historyDiff } from "../../services/policy-compare";
import { getDraft } from "../../services/policy-draft";
import { announceVersion } from "../../services/policy-hub";
import { simulateRequest } from "../../services/simulate";
import { listUsers } from "../../services/users";
import { HistoryPage, TestPage } from "../../views/policy-history";
import { FORM_STATUS, formFields, pageContext } from "./app";
import { confirmFirst } from "./confirm";

const TEST_FIELDS = ["url", "client", "method", "user", "groups", "at", "target"] as const;

export function mountPolicyHistory(pages: Hono<DashEnv>) {
  pages.get("/history", async (c) => {
    const db = getDb(c.env.DB);
    const before = Number(c.req.query("before")) || undefined;
    const versions = await listVersions(db, { limit: 25, ...(before ? { before } : {}) });
    const head = await latestHead(db);
    const diff = await historyDiff({
      db,
      input: { from: Number(c.req.query("from")), to: Number(c.req.query("to")), paging: Boolean(before) },
    });
    const published = c.req.query("published");
    const publishedVersion = Number(published ?? c.req.query("rolledback"));
    const applied =
      Number.isInteger(publishedVersion) && publishedVersion > 0
        ? { version: publishedVersion, ...(await appliedCount({ db, version: publishedVersion })) }
        : undefined;
    const rolled = c.req.query("rolledback");
    const notice = published
      ? c.req.query("unchanged") !== undefined
        ? `Nothing new: the draft equals v${published}.`
        : `Published v${published}. Waiting nodes receive it within a second.`
      : rolled
        ? `Rolled back: v${rolled} is now the latest version.`
        : undefined;
    const actors: Record<string, string> = {};
    for (const u of await listUsers(db)) actors[`user:${u.id}`] = u.name;
    const older = versions.length === 25 ? versions[24]?.version : undefined;
    return c.html(
      <HistoryPage
        page={pageContext(c)}
        versions={versions}
        latest={head?.version ?? null}
        diff={diff}
        older={older}
        notice={notice}
        actors={actors}
        applied={applied}
      />,
    );
  });

  /** "Applied on x of y nodes" for the history page's live line (polled by the page script). */
  pages.get("/applied", async (c) => {
    const version = Number(c.req.query("version"));
    if (!Number.isInteger(version) || version < 1)
      throw new AppError("BAD_REQUEST", "version: a positive integer");
    return c.json({ version, ...(await appliedCount({ db: getDb(c.env.DB), version })) });
  });

  pages.post(
    "/versions/:version/rollback",
    confirmFirst({
      back: "/policy/history",
      message: (_f, c) =>
        `Publish v${c.req.param("version")}'s content as a new version? Every node applies it.`,
    }),
    async (c) => {
      const version = Number(c.req.param("version"));
      if (!Number.isInteger(version) || version < 1) throw new AppError("NOT_FOUND", "no such version");
      const result = await rollbackPolicy({
        db: getDb(c.env.DB),
        seeds: signingSeeds(c.env),
        actor: auditOf(c),
        notify: (v) => announceVersion(c.env, v),
        input: { version },
      });
      return c.redirect(`/policy/history?rolledback=${result.version}`, 303);
    },
  );

  pages.get("/test", async (c) => {
    const draft = await getDraft(getDb(c.env.DB));
    // Prefilled from the query string (the request search page links a logged request here).
    const q = c.req.query();
    const form = Object.fromEntries(
      TEST_FIELDS.flatMap((k) => (q[k] ? [[k, q[k].slice(0, 4096)] as const] : [])),
    );
    return c.html(<TestPage page={pageContext(c)} form={form} hasDraft={draft.edited} />);
  });

  pages.post("/test", async (c) => {
    const db = getDb(c.env.DB);
    const form = await formFields(c);
    const draft = await getDraft(db);
    const render = (extra: { error?: string; result?: Parameters<typeof TestPage>[0]["result"] }) =>
      c.html(<TestPage page={pageContext(c)} form={form} hasDraft={draft.edited} {...extra} />, FORM_STATUS);
    try {
      const client = (form.client ?? "").trim();
      if (!parseIp(client)) return render({ error: `client: not an IP address: ${client}` });
      let version: number | null = null;
      let policy: unknown = draft.policy;
      if (form.target !== "draft") {
        version = (await latestHead(db))?.version ?? null;
        if (version === null) return render({ error: "nothing is published yet: test against the draft" });
        policy = (await getVersion(db, version)).policy;
      }
      const at = form.at ? Date.parse(`${form.at}Z`) : Number.NaN;
      const decision = await simulateRequest(parsePolicy(policy), {
        client,
        url: (form.url ?? "").trim(),
        ...(form.method?.trim() ? { method: form.method.trim() } : {}),
        ...(form.user?.trim() ? { user: form.user.trim() } : {}),
        groups: (form.groups ?? "").split(/[\s,]+/).filter(Boolean),
        ...(Number.isFinite(at) ? { at } : {}),
      });
      return render({
        result: { ...decision, facts: decision.facts as unknown as Record<string, unknown>, version },
      });
    } catch (error) {
      if (error instanceof AppError && error.status < 500) return render({ error: error.message });
      throw error;
    }
  });
}
