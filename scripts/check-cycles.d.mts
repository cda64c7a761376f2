/** Every source file of worker/, protocol/ and agent/ (absolute paths) → the files it imports. */
export function importGraph(): Map<string, Set<string>>;
/** The import cycles of a graph: each strongly connected component of 2+ files, paths relative to the repo. */
export function findCycles(graph: Map<string, Set<string>>): string[][];
