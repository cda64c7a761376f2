export function enrollArgs(options: {
  master: string;
  key: string;
  stateDir: string;
  listen: string;
  hostname: string;
  extra?: string[];
}): string[];
