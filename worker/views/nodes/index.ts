export { NodesPage } from "./list";
export { NodePage } from "./node";
export { type NodeEvent, type NodeView, reportQuery, Spool } from "./shared";
