import { getDb } from "../../db/client";
import { AppError } from "../../errors";
import { listNodeNames } from "../../services/fleet";
import { searchRequests } from "../../services/request-search";
import { listSites } from "../../services/sites";
import { type RequestFormView, RequestsPage } from "../../views/requests";
import { fromLocalInput, toLocalInput } from "../../views/time";
import { filterOf, RequestQuery } from "../admin/requests";
import { dashboardSection, pageContext } from "./app";

export const requestPages = dashboardSection();

const HOUR = 3_600_000;
/** datetime-local in the page's zone (as on the reports page), or anything the API accepts. */
const instant = (v: string | undefined, zone: string) => {
  if (!v?.trim()) return undefined;
  const text = v.trim();
  const ms = fromLocalInput(text, zone);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : text;
};

requestPages.get("/", async (c) => {
  const db = getDb(c.env.DB);
  const query = c.req.query();
  const zone = pageContext(c).tz?.zone ?? "UTC";
  const local = (ms: number) => toLocalInput(ms, zone, true);
  // Default: the last hour, ending at the next full minute.
  const end = Math.ceil(Date.now() / 60_000) * 60_000;
  const form: RequestFormView = {
    from: query.from ?? local(end - HOUR),
    to: query.to ?? local(end),
    node: query.node ?? "",
    // A node is narrower than its site: with both picked the search is the node's (as on Reports).
    site: query.node?.trim() ? "" : (query.site ?? ""),
    client: query.client ?? "",
    user: query.user ?? "",
    host: query.host ?? "",
    action: query.action ?? "",
    rule: query.rule ?? "",
    status: query.status ?? "",
    limit: query.limit ?? "100",
  };
  // The page's own links keep the form's values; the API gets UTC instants.
  const pageParams = new URLSearchParams();
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) {
    const value = k === "from" || k === "to" ? instant(v, zone) : v.trim();
    if (value) params.set(k, value);
    if (v.trim()) pageParams.set(k, v.trim());
  }
  const [nodes, sites] = await Promise.all([listNodeNames({ db }), listSites(db)]);
  const render = (extra: { result?: Awaited<ReturnType<typeof searchRequests>>; error?: string }) =>
    c.html(
      <RequestsPage
        page={pageContext(c)}
        form={form}
        nodes={nodes}
        sites={sites.map((s) => s.name)}
        query={pageParams.toString()}
        apiQuery={params.toString()}
        {...extra}
      />,
    );
  const parsed = RequestQuery.safeParse({ ...Object.fromEntries(params), cursor: query.cursor });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return render({ error: `${issue.path.join(".")}: ${issue.message}` });
  }
  try {
    const limit = Math.min(500, Math.max(1, Number.parseInt(form.limit, 10) || 100));
    const result = await searchRequests({
      db,
      bucket: c.env.LOG_ARCHIVE,
      filter: filterOf(parsed.data),
      limit,
      cursor: parsed.data.cursor,
    });
    return render({ result });
  } catch (error) {
    if (error instanceof AppError && error.status < 500) return render({ error: error.message });
    throw error;
  }
});
