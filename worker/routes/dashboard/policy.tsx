import { hashPassword } from "../../../protocol/policy/password";
import { validatePolicy } from "../../../protocol/policy/schema";
import { getDb } from "../../db/client";
import { AppError } from "../../errors";
import { auditOf, type DashContext } from "../../middleware/session";
import { latestHead } from "../../services/policy";
import { diffDraft } from "../../services/policy-compare";
import {
  type DraftPolicy,
  discardDraft,
  editDraft,
  getDraft,
  publishDraft,
} from "../../services/policy-draft";
import { ruleHits } from "../../services/rule-hits";
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
import { dashboardSection, FORM_STATUS, formFields, POLICY_FORM_LIMIT, pageContext } from "./app";
import { confirmFirst } from "./confirm";
import { domainLines, indexIssues, lines, recordOf, ruleFromForm, rulesOf } from "./policy-forms";
import { mountPolicyHistory } from "./policy-history";

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
    // VALIDATION_FAILED: the policy names a site that does not exist.
    if (error instanceof AppError && (error.code === "POLICY_INVALID" || error.code === "VALIDATION_FAILED"))
      return renderEditor(c, "rules", { error: error.message });
    throw error;
  }
});

mountPolicyHistory(policyPages);
