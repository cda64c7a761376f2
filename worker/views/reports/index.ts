export { ReportsPage, TopPage, type TopResult } from "./page";
export { Chart, drillHref, keyLabel, type ReportRangeView, reportParams, TopList } from "./shared";
