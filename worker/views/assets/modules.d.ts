// Wrangler's Text module rule (wrangler.toml [[rules]]) turns these imports into strings.
declare module "*.css" {
  const text: string;
  export default text;
}
declare module "*/uPlot.iife.min.js" {
  const text: string;
  export default text;
}
declare module "*/dashboard.js" {
  const text: string;
  export default text;
}
