import { type Command, EXIT_OK, parseFlags, UsageError } from "../cli-kit";
import { type HelperMode, runHelper } from "../proxy/squid/helper";

/** Hidden: what Squid runs as its helper (the include file names it); docs/squid.md. */
export const squidHelperCommand: Command = {
  name: "squid-helper",
  summary: "(run by Squid) external ACL and basic-auth helper relaying to the running agent",
  usage: `Usage: fleetgate-agent squid-helper --socket PATH decide|auth

Run by Squid, not by hand: reads Squid's helper protocol (with concurrency channel ids) on stdin,
asks the running agent over its unix socket and answers on stdout. Refuses everything while the
agent cannot be reached.`,

  async run(args, io) {
    const mode = args[args.length - 1];
    const flags = parseFlags(mode === "--help" || mode === "-h" ? args : args.slice(0, -1), {
      socket: { type: "string" },
    });
    if (!flags) {
      io.out(`${this.usage}\n`);
      return EXIT_OK;
    }
    if (mode !== "decide" && mode !== "auth")
      throw new UsageError("the last argument must be decide or auth");
    if (!flags.socket) throw new UsageError("--socket PATH is required");
    await runHelper({
      mode: mode as HelperMode,
      socketPath: flags.socket,
      input: process.stdin,
      write: (text) => process.stdout.write(text),
    });
    return EXIT_OK;
  },
};
