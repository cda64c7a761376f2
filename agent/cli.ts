import { type Command, EXIT_OK, EXIT_USAGE, type Io, UsageError } from "./cli-kit";
import { doctorCommand } from "./commands/doctor";
import { enrollCommand } from "./commands/enroll";
import { runCommand } from "./commands/run";
import { squidHelperCommand } from "./commands/squid-helper";
import { statusCommand } from "./commands/status";
import { versionCommand } from "./commands/version";

const COMMANDS: readonly Command[] = [
  enrollCommand,
  runCommand,
  statusCommand,
  doctorCommand,
  versionCommand,
];

export const MAIN_USAGE = `Usage: fleetgate-agent <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(8)} ${c.summary}`).join("\n")}

Run "fleetgate-agent <command> --help" for a command's options.`;

/** Dispatches one command line; returns the exit code (0 ok, 1 failure, 2 usage). */
export async function runCli(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--help" || name === "-h" || name === "help") {
    io.out(`${MAIN_USAGE}\n`);
    return EXIT_OK;
  }
  if (name === "--version" || name === "-v") return versionCommand.run([], io);
  // Hidden from the usage: squid-helper is run by Squid (docs/squid.md).
  const command = [...COMMANDS, squidHelperCommand].find((c) => c.name === name);
  if (!command) {
    io.err(`${name ? `unknown command "${name}"\n\n` : ""}${MAIN_USAGE}\n`);
    return EXIT_USAGE;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`fleetgate-agent ${command.name}: ${error.message}\n\n${command.usage}\n`);
      return EXIT_USAGE;
    }
    throw error;
  }
}
