// The `fleetgate-agent enroll` argument list the e2e tests and benchmarks pass: one place, so a
// renamed flag is changed once. `extra` goes last (e.g. ["--driver", "squid"]).
/** @param {{ master: string, key: string, stateDir: string, listen: string, hostname: string, extra?: string[] }} o */
export function enrollArgs({ master, key, stateDir, listen, hostname, extra = [] }) {
  return [
    "enroll",
    "--master",
    master,
    "--key",
    key,
    "--state-dir",
    stateDir,
    "--listen",
    listen,
    "--hostname",
    hostname,
    ...extra,
  ];
}
