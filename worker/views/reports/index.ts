export { ReportsPage, TopPage, type TopResult } from "./page";
export { drillHref, keyLabel, type ReportRangeView, reportParams, TopList } from "./shared";
