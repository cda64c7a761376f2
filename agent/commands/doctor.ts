import { type Command, EXIT_FAILURE, EXIT_OK, parseFlags, STATE_DIR_HELP } from "../cli-kit";
import { type CheckResult, runChecks } from "../doctor/checks";
import { resolveStateDir, StateDir } from "../state/state-dir";

const MARK: Record<CheckResult["status"], string> = { ok: "✓", warn: "!", fail: "✗", skip: "-" };

export const doctorCommand: Command = {
  name: "doctor",
  summary: "check DNS, network, TLS, token, clock, port, state dir and cached policy",
  usage: `Usage: fleetgate-agent doctor [--state-dir DIR]

Runs the node's troubleshooting checklist and prints one line per check (✓ ok, ! warning,
✗ failure) with a fix hint. Exit 0 when nothing failed, 1 otherwise.

Options:
${STATE_DIR_HELP}
  -h, --help        show this help`,

  async run(args, io) {
    const flags = parseFlags(args, { "state-dir": { type: "string" } });
    if (!flags) {
      io.out(`${this.usage}\n`);
      return EXIT_OK;
    }
    const state = new StateDir(resolveStateDir(flags["state-dir"], io.env));
    const config = await state.readConfig().catch((error: Error) => {
      io.out(
        `✗ config.json readable — ${error.message}\n    fix: correct the named field in config.json (spool settings: docs/spool.md); enroll rewrites the rest\n`,
      );
      return undefined;
    });
    if (config === undefined) return EXIT_FAILURE;
    if (!config?.nodeId) {
      io.out(
        `✗ node enrolled — no enrollment in ${state.root}\n    fix: fleetgate-agent enroll --master URL --key KEY\n`,
      );
      return EXIT_FAILURE;
    }
    const results = await runChecks({
      state,
      config,
      credentials: await state.readCredentials().catch(() => null),
      runtime: await state.readRuntime().catch(() => null),
      fetch: globalThis.fetch,
    });
    io.out(`Fleetgate doctor: node ${config.nodeId}, master ${config.masterUrl}\n`);
    for (const result of results) {
      io.out(`${MARK[result.status]} ${result.name} — ${result.detail}\n`);
      if (result.hint && result.status !== "ok") io.out(`    fix: ${result.hint}\n`);
    }
    const failed = results.filter((r) => r.status === "fail").length;
    const warned = results.filter((r) => r.status === "warn").length;
    io.out(
      failed
        ? `${failed} check(s) failed, ${warned} warning(s). Event log: ${state.eventsPath}\n`
        : `All checks passed${warned ? ` (${warned} warning(s))` : ""}.\n`,
    );
    return failed ? EXIT_FAILURE : EXIT_OK;
  },
};
