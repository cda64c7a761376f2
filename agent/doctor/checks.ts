// `fleetgate-agent doctor`: runs every check in the order a person would try them, skipping the
// ones a failed earlier check makes pointless. The way to the master: master-checks.ts; this
// machine: local-checks.ts; a squid node: squid.ts.
import {
  checkCachedPolicy,
  checkDisk,
  checkEnforcing,
  checkListen,
  checkRunning,
  checkSpool,
  checkWritable,
} from "./local-checks";
import { checkDns, checkTcp, checkTls, checkToken } from "./master-checks";
import { type CheckResult, type CheckStatus, type DoctorContext, skipped } from "./result";
import { addSquidChecks } from "./squid";

export { BACKLOG_FAIL_MS, BACKLOG_WARN_MS, judgeDisk } from "./local-checks";
export { judgeSkew } from "./master-checks";
export type { CheckResult, CheckStatus, DoctorContext };

/** Every check SafeSquid's troubleshooting list asks for, in the order a person would try them. */
export async function runChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  const url = new URL(ctx.config.masterUrl);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const results: CheckResult[] = [];
  const dns = await checkDns(host);
  results.push(dns);
  const tcp =
    dns.status === "fail" ? skipped("TCP connect to master", "DNS failed") : await checkTcp(host, port);
  results.push(tcp);
  if (url.protocol === "https:") {
    results.push(
      tcp.status === "fail" ? skipped("TLS handshake", "no TCP connection") : await checkTls(host, port),
    );
  }
  const { token, skew } =
    tcp.status === "fail"
      ? {
          token: skipped("node token accepted by master", "master unreachable"),
          skew: skipped("clock skew vs master", "master unreachable"),
        }
      : await checkToken(ctx);
  results.push(token, skew);
  const running = await checkRunning(ctx);
  results.push(running);
  if (running.status === "ok") results.push(checkEnforcing(ctx, token));
  results.push(await checkListen(ctx));
  results.push(await checkWritable(ctx.state));
  results.push(await checkDisk(ctx.state.root));
  results.push(await checkCachedPolicy(ctx));
  results.push(await checkSpool(ctx));
  if (ctx.config.driver === "squid") await addSquidChecks(results, ctx.config, ctx.state.root);
  return results;
}
