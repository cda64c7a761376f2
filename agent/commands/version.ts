import { type Command, EXIT_OK, parseFlags } from "../cli-kit";
import { AGENT_VERSION } from "../version";

export const versionCommand: Command = {
  name: "version",
  summary: "print the agent version",
  usage: `Usage: fleetgate-agent version

Prints the agent version (embedded at build time).

Options:
  -h, --help        show this help`,

  async run(args, io) {
    if (!parseFlags(args, {})) {
      io.out(`${this.usage}\n`);
      return EXIT_OK;
    }
    io.out(`fleetgate-agent ${AGENT_VERSION}\n`);
    return EXIT_OK;
  },
};
