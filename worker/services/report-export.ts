// GET /api/v1/reports/export.csv: one of the JSON reports as CSV, with the file name it downloads as.
import type { Db } from "../db/client";
import {
  type Action,
  type ReportFilter,
  summary,
  type TopDimension,
  timeseries,
  toCsv,
  top,
} from "./reports";

export interface ReportExportInput {
  report: "summary" | "timeseries" | "top";
  filter: ReportFilter;
  /** For `top`: the dimension (default host), an action filter and the row limit. */
  by?: TopDimension | undefined;
  action?: Action | undefined;
  limit: number;
}

const SUMMARY_FIELDS = [
  "requests",
  "allowed",
  "blocked",
  "authChallenges",
  "errors",
  "bytesIn",
  "bytesOut",
  "clients",
  "users",
  "nodes",
] as const;

/** The CSV text and the attachment's file name (`fleetgate-<report>-<day of from>.csv`). */
export async function exportReportCsv({ db, input }: { db: Db; input: ReportExportInput }) {
  const { filter } = input;
  let csv: string;
  let name: string;
  if (input.report === "summary") {
    const s = await summary(db, filter);
    csv = toCsv(
      ["from", "to", ...SUMMARY_FIELDS],
      [[new Date(s.from).toISOString(), new Date(s.to).toISOString(), ...SUMMARY_FIELDS.map((f) => s[f])]],
    );
    name = "summary";
  } else if (input.report === "timeseries") {
    const t = await timeseries(db, filter);
    csv = toCsv(
      ["time", "requests", "allowed", "blocked", "bytesIn", "bytesOut"],
      t.points.map((p) => [
        new Date(p.t).toISOString(),
        p.requests,
        p.allowed,
        p.blocked,
        p.bytesIn,
        p.bytesOut,
      ]),
    );
    name = "timeseries";
  } else {
    const by = input.by ?? "host";
    const t = await top(db, { ...filter, by, action: input.action, limit: input.limit });
    csv = toCsv(
      [by, "requests", "blocked", "bytesIn", "bytesOut"],
      t.rows.map((r) => [r.key, r.requests, r.blocked, r.bytesIn, r.bytesOut]),
    );
    name = `top-${by}`;
  }
  const stamp = new Date(filter.from).toISOString().slice(0, 10);
  return { csv, fileName: `fleetgate-${name}-${stamp}.csv` };
}
