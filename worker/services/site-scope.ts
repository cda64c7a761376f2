// A report or a request search covers one node or one site (the site's nodes as they are now),
// never both; a site that does not exist is a 400 naming `query.site`, not an empty answer.
import { AppError } from "../errors";

/** Refuses a scope that names both a node and a site; `what` is "a report", "a search". */
export function checkNodeOrSite(
  scope: { node?: string | undefined; site?: string | undefined },
  what: string,
) {
  if (scope.node && scope.site) {
    throw new AppError("VALIDATION_FAILED", `${what} is for one node or one site, not both`, [
      { path: "query.site", message: "not with node" },
    ]);
  }
}

export const unknownSite = (name: string) =>
  new AppError("VALIDATION_FAILED", `no site named ${name}`, [
    { path: "query.site", message: "unknown site" },
  ]);
