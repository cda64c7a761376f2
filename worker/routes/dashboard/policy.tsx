import { parseIp } from "../../../protocol/policy/cidr";
import { hashPassword } from "../../../protocol/policy/password";
import { validatePolicy } from "../../../protocol/policy/schema";
import { getDb } from "../../db/client";
import { AppError } from "../../errors";
import { auditOf, type DashContext } from "../../middleware/session";
import { appliedCount } from "../../services/fleet";
import {
  getVersion,
  latestHead,
  listVersions,
  parsePolicy,
  rollbackPolicy,
  signingSeeds,
} from "../../services/policy";
import { diffDraft, historyDiff } from "../../services/policy-compare";
import {
  type DraftPolicy,
  discardDraft,
  editDraft,
  getDraft,
  publishDraft,
} from "../../services/policy-draft";
import { announceVersion } from "../../services/policy-hub";
import { ruleHits } from "../../services/rule-hits";
import { simulateRequest } from "../../services/simulate";
import { listUsers } from "../../services/users";
import {
  AccessTab,
  type EditorState,
  JsonTab,
  ListsTab,
  PolicyEditor,
  type PolicyTab,
  RuleForm,
  RulesTab,
  SchedulesTab,
  SettingsTab,
  UsersTab,
} from "../../views/policy";
import { HistoryPage, TestPage } from "../../views/policy-history";
import { dashboardSection, FORM_STATUS, formFields, POLICY_FORM_LIMIT, pageContext } from "./app";
import { confirmFirst } from "./confirm";
import { domainLines, indexIssues, lines, recordOf, ruleFromForm, rulesOf } from "./policy-forms";

export const policyPages = dashboardSection({ maxBody: POLICY_FORM_LIMIT });

const TABS: PolicyTab[] = ["rules", "lists", "schedules", "access", "users", "settings", "json"];

async function editorState(c: DashContext): Promise<EditorState> {
  const db = getDb(c.env.DB);
  const draft = await getDraft(db);
  const head = await latestHead(db);
  const result = validatePolicy(draft.policy);
  const editor = draft.updatedBy?.startsWith("user:")
    ? (await listUsers(db)).find((u) => `user:${u.id}` === draft.updatedBy)?.name
    : undefined;
  return {
    ...draft,
    updatedBy: editor ?? draft.updatedBy,
    latestVersion: head?.version ?? null,
    issues: indexIssues(result.ok ? [] : result.issues),
  };
}

async function renderEditor(
  c: DashContext,
  tab: PolicyTab,
  extra: { notice?: string; error?: string; raw?: string } = {},
) {
  const state = await editorState(c);
  const page = pageContext(c);
  const db = getDb(c.env.DB);
  const diff = state.edited ? await diffDraft({ db }) : null;
  const body =
    tab === "lists" ? (
      <ListsTab page={page} state={state} editing={c.req.query("list")} />
    ) : tab === "schedules" ? (
      <SchedulesTab page={page} state={state} editing={c.req.query("schedule")} />
    ) : tab === "access" ? (
      <AccessTab page={page} state={state} />
    ) : tab === "users" ? (
      <UsersTab page={page} state={state} />
    ) : tab === "settings" ? (
      <SettingsTab page={page} state={state} />
    ) : tab === "json" ? (
      <JsonTab page={page} state={state} raw={extra.raw} />
    ) : (
      <RulesTab page={page} state={state} hits={await ruleHits({ db }).catch(() => null)} />
    );
  return c.html(
    <PolicyEditor
      page={page}
      state={state}
      tab={tab}
      notice={extra.notice}
      error={extra.error}
      body={body}
      diff={diff}
    />,
    FORM_STATUS,
  );
}

policyPages.get("/", (c) => {
  const tab = TABS.find((t) => t === c.req.query("tab")) ?? "rules";
  return renderEditor(c, tab, {
    notice: c.req.query("saved") !== undefined ? "Saved to the draft." : undefined,
  });
});

/** Applies `change` to the draft (service verb) and returns to the tab, or shows the form's problem. */
async function edit(c: DashContext, tab: PolicyTab, change: (policy: DraftPolicy) => unknown) {
  const { problem } = await editDraft({ db: getDb(c.env.DB), actor: c.get("actor"), change });
  if (problem) return renderEditor(c, tab, { error: problem });
  return c.redirect(`/policy?tab=${tab}&saved`, 303);
}

const indexParam = (c: DashContext, length: number) => {
  const i = Number(c.req.param("index"));
  if (!Number.isInteger(i) || i < 0 || i >= length)
    throw new AppError("NOT_FOUND", "no such rule in the draft");
  return i;
};

async function renderRule(c: DashContext, index: number | null) {
  const state = await editorState(c);
  return c.html(
    <RuleForm
      page={pageContext(c)}
      state={state}
      index={index}
      schedules={Object.keys(recordOf(state.policy, "schedules"))}
      lists={Object.keys(recordOf(state.policy, "lists"))}
    />,
  );
}

policyPages.get("/rules/new", (c) => renderRule(c, null));
policyPages.get("/rules/:index", async (c) => {
  const draft = await getDraft(getDb(c.env.DB));
  return renderRule(c, indexParam(c, rulesOf(draft.policy).length));
});

async function saveRule(c: DashContext, index: number | null) {
  const body = await c.req.parseBody({ all: true });
  const form = await formFields(c);
  const schemes = ([] as unknown[])
    .concat(body.schemes ?? [])
    .filter((s): s is string => typeof s === "string");
  const rule = ruleFromForm(form, schemes);
  let at = 0;
  const { policy } = await editDraft({
    db: getDb(c.env.DB),
    actor: c.get("actor"),
    change: (p) => {
      const rules = rulesOf(p);
      p.rules = rules;
      at = index === null ? rules.length : indexParam(c, rules.length);
      if (index === null) rules.push(rule);
      else rules[at] = rule;
    },
  });
  // Problems in this rule: show the form again with each message beside its field.
  const result = validatePolicy(policy);
  if (!result.ok && indexIssues(result.issues).under(`rules[${at}]`).length)
    return c.redirect(`/policy/rules/${at}`, 303);
  return c.redirect("/policy?tab=rules&saved", 303);
}

policyPages.post("/rules/new", (c) => saveRule(c, null));
policyPages.post("/rules/:index", (c) => saveRule(c, Number(c.req.param("index"))));

policyPages.post("/rules/:index/move", async (c) => {
  const form = await formFields(c);
  return edit(c, "rules", (p) => {
    const rules = rulesOf(p);
    const from = indexParam(c, rules.length);
    const to = Math.min(Math.max(0, Number(form.to)), rules.length - 1);
    const [rule] = rules.splice(from, 1);
    if (rule) rules.splice(to, 0, rule);
  });
});

policyPages.post("/rules/:index/toggle", (c) =>
  edit(c, "rules", (p) => {
    const rules = rulesOf(p);
    const rule = rules[indexParam(c, rules.length)]!;
    if (rule.enabled === false) delete rule.enabled;
    else rule.enabled = false;
  }),
);

policyPages.post(
  "/rules/:index/delete",
  confirmFirst({
    back: "/policy?tab=rules",
    message: (_f, c) => `Delete rule ${Number(c.req.param("index")) + 1} from the draft?`,
  }),
  (c) =>
    edit(c, "rules", (p) => {
      const rules = rulesOf(p);
      rules.splice(indexParam(c, rules.length), 1);
    }),
);

policyPages.post("/lists", async (c) => {
  const body = await c.req.parseBody();
  const form = await formFields(c);
  const file = body.file instanceof File && body.file.size > 0 ? await body.file.text() : "";
  const name = (form.name ?? "").trim();
  const domains = domainLines(`${form.domains ?? ""}\n${file}`);
  const cidrs = lines(form.cidrs).flatMap((l) => l.split(/[\s,]+/));
  return edit(c, "lists", (p) => {
    if (!name) return "a list needs a name";
    const lists = recordOf(p, "lists");
    p.lists = lists;
    lists[name] = { ...(domains.length ? { domains } : {}), ...(cidrs.length ? { cidrs } : {}) };
  });
});

policyPages.post(
  "/lists/delete",
  confirmFirst({ back: "/policy?tab=lists", message: (f) => `Delete list ${f.name ?? ""} from the draft?` }),
  async (c) => {
    const { name = "" } = await formFields(c);
    return edit(c, "lists", (p) => {
      delete recordOf(p, "lists")[name];
    });
  },
);

policyPages.post("/schedules", async (c) => {
  const body = await c.req.parseBody({ all: true });
  const form = await formFields(c);
  const days = ([] as unknown[]).concat(body.days ?? []).filter((d): d is string => typeof d === "string");
  const name = (form.name ?? "").trim();
  return edit(c, "schedules", (p) => {
    if (!name) return "a schedule needs a name";
    const schedules = recordOf(p, "schedules");
    p.schedules = schedules;
    schedules[name] = {
      tz: (form.tz ?? "").trim(),
      days,
      from: (form.from ?? "").trim(),
      to: (form.to ?? "").trim(),
    };
  });
});

policyPages.post(
  "/schedules/delete",
  confirmFirst({
    back: "/policy?tab=schedules",
    message: (f) => `Delete schedule ${f.name ?? ""} from the draft?`,
  }),
  async (c) => {
    const { name = "" } = await formFields(c);
    return edit(c, "schedules", (p) => {
      delete recordOf(p, "schedules")[name];
    });
  },
);

policyPages.post("/access", async (c) => {
  const form = await formFields(c);
  const clients = lines(form.clients).flatMap((l) => l.split(/[\s,]+/));
  return edit(c, "access", (p) => {
    if (clients.length) p.access = { clients };
    else delete p.access;
  });
});

const authOf = (p: DraftPolicy) => {
  const auth = recordOf(p, "auth") as unknown as Record<string, unknown>;
  p.auth = auth;
  return auth;
};

policyPages.post("/auth", async (c) => {
  const form = await formFields(c);
  return edit(c, "users", (p) => {
    const auth = authOf(p);
    auth.required = form.required === "1";
    auth.realm = (form.realm ?? "").trim() || "Fleetgate";
  });
});

policyPages.post("/users", async (c) => {
  const form = await formFields(c);
  const name = (form.name ?? "").trim();
  if (!name || !form.password)
    return renderEditor(c, "users", { error: "a proxy user needs a name and a password" });
  // The hash is made here, on the master: the password itself never reaches the draft or a node.
  const passwordHash = await hashPassword(form.password);
  const groups = (form.groups ?? "")
    .split(/[\s,]+/)
    .map((g) => g.trim())
    .filter(Boolean);
  return edit(c, "users", (p) => {
    const auth = authOf(p);
    const users = (Array.isArray(auth.users) ? auth.users : []) as Record<string, unknown>[];
    auth.users = users;
    const existing = users.find((u) => u.name === name);
    if (existing) Object.assign(existing, { passwordHash, groups });
    else users.push({ name, passwordHash, groups });
  });
});

policyPages.post(
  "/users/delete",
  confirmFirst({
    back: "/policy?tab=users",
    message: (f) => `Delete proxy user ${f.name ?? ""} from the draft?`,
  }),
  async (c) => {
    const { name = "" } = await formFields(c);
    return edit(c, "users", (p) => {
      const auth = authOf(p);
      auth.users = (Array.isArray(auth.users) ? auth.users : []).filter(
        (u) => (u as { name?: string }).name !== name,
      );
    });
  },
);

policyPages.post("/settings", async (c) => {
  const form = await formFields(c);
  return edit(c, "settings", (p) => {
    p.defaultAction = form.defaultAction === "block" ? "block" : "allow";
    p.blockPage = { title: (form.title ?? "").trim(), body: form.body ?? "" };
    p.logging = { includeQuery: form.includeQuery === "1" };
  });
});

policyPages.post("/json", async (c) => {
  const form = await formFields(c);
  let parsed: unknown;
  try {
    parsed = JSON.parse(form.json ?? "");
  } catch (error) {
    return renderEditor(c, "json", { error: `not JSON: ${(error as Error).message}`, raw: form.json });
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    return renderEditor(c, "json", { error: "a policy is a JSON object", raw: form.json });
  }
  return edit(c, "json", (p) => {
    for (const key of Object.keys(p)) delete p[key];
    Object.assign(p, parsed);
  });
});

policyPages.post(
  "/discard",
  confirmFirst({ back: "/policy", message: () => "Throw away every unpublished change in the draft?" }),
  async (c) => {
    await discardDraft(getDb(c.env.DB));
    return c.redirect("/policy", 303);
  },
);

policyPages.post("/publish", async (c) => {
  const form = await formFields(c);
  const message = (form.message ?? "").trim().slice(0, 500);
  if (!message) return renderEditor(c, "rules", { error: "say what changed in the publish message" });
  try {
    const result = await publishDraft({
      db: getDb(c.env.DB),
      env: c.env,
      audit: auditOf(c),
      input: { message },
    });
    return c.redirect(
      `/policy/history?published=${result.version}${result.unchanged ? "&unchanged" : ""}`,
      303,
    );
  } catch (error) {
    if (error instanceof AppError && error.code === "POLICY_INVALID")
      return renderEditor(c, "rules", { error: error.message });
    throw error;
  }
});

policyPages.get("/history", async (c) => {
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
policyPages.get("/applied", async (c) => {
  const version = Number(c.req.query("version"));
  if (!Number.isInteger(version) || version < 1)
    throw new AppError("BAD_REQUEST", "version: a positive integer");
  return c.json({ version, ...(await appliedCount({ db: getDb(c.env.DB), version })) });
});

policyPages.post(
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

const TEST_FIELDS = ["url", "client", "method", "user", "groups", "at", "target"] as const;

policyPages.get("/test", async (c) => {
  const draft = await getDraft(getDb(c.env.DB));
  // Prefilled from the query string (the request search page links a logged request here).
  const q = c.req.query();
  const form = Object.fromEntries(
    TEST_FIELDS.flatMap((k) => (q[k] ? [[k, q[k].slice(0, 4096)] as const] : [])),
  );
  return c.html(<TestPage page={pageContext(c)} form={form} hasDraft={draft.edited} />);
});

policyPages.post("/test", async (c) => {
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
