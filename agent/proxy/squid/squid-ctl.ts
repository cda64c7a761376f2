// Running the squid binary: version, `-k parse` of a candidate include before it goes live, and
// `-k reconfigure` once it has. A candidate is parsed through a copy of squid.conf whose include
// line names the candidate instead of the live file, so Squid judges exactly the config it would load.

import { execFile } from "node:child_process";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { SquidSettings } from "./settings";

export interface SquidRun {
  code: number;
  output: string;
}

export function runSquid(binary: string, args: string[], timeoutMs = 60_000): Promise<SquidRun> {
  return new Promise((resolve) => {
    execFile(binary, args, { timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      const output = `${stdout}${stderr}${error && typeof error.code !== "number" ? error.message : ""}`;
      resolve({ code, output });
    });
  });
}

export async function squidVersion(binary: string): Promise<string | null> {
  const run = await runSquid(binary, ["-v"], 10_000);
  const m = /Version\s+(\S+)/.exec(run.output);
  return run.code === 0 && m ? m[1]! : null;
}

/** Squid's complaint, the lines that matter (FATAL/ERROR/Bungled), else the tail of its output. */
export function squidComplaint(output: string): string {
  const lines = output
    .split("\n")
    .map((l) => l.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d(\.\d+)?\|\s*/, "").trim());
  const bad = lines.filter((l) => /FATAL|ERROR|Bungled|Terminated/i.test(l));
  return (bad.length ? bad : lines.filter(Boolean).slice(-5)).join("; ").slice(0, 1500);
}

/** `*`, `?` and `[…]` in the file name part of a Squid include pattern (glob(3), enough for conf.d/*.conf). */
function globToRegExp(pattern: string): RegExp {
  let out = "";
  for (const ch of pattern) {
    if (ch === "*") out += "[^/]*";
    else if (ch === "?") out += "[^/]";
    else out += ch.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`);
}

async function expandGlob(pattern: string): Promise<string[]> {
  if (!/[*?[]/.test(pattern)) return [pattern];
  const dir = path.dirname(pattern);
  const re = globToRegExp(path.basename(pattern));
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .filter((n) => re.test(n))
    .sort()
    .map((n) => path.join(dir, n));
}

/**
 * squid.conf's text with the include line that covers `includePath` pointing at `candidate`;
 * null when no include line covers it (then the include would never be loaded).
 */
export async function confWithCandidate(
  confText: string,
  includePath: string,
  candidate: string,
): Promise<string | null> {
  const target = path.resolve(includePath);
  let covered = false;
  const lines: string[] = [];
  for (const line of confText.split("\n")) {
    const m = /^\s*include\s+(.+?)\s*$/.exec(line);
    if (!m) {
      lines.push(line);
      continue;
    }
    const files: string[] = [];
    for (const pattern of m[1]!.split(/\s+/)) {
      const hit = !/[*?[]/.test(pattern)
        ? path.resolve(pattern) === target
        : globToRegExp(path.resolve(pattern)).test(target);
      if (!hit) {
        files.push(pattern);
        continue;
      }
      covered = true;
      const expanded = (await expandGlob(path.resolve(pattern))).filter((f) => f !== target);
      files.push(...expanded, candidate);
    }
    lines.push(files.length ? `include ${files.join(" ")}` : "");
  }
  return covered ? lines.join("\n") : null;
}

export type ParseResult = { ok: true } | { ok: false; error: string };

/** Parses squid.conf as it would be with `includeText` as the include; nothing live is touched. */
export async function parseCandidate(settings: SquidSettings, includeText: string): Promise<ParseResult> {
  const candidate = `${settings.includePath}.candidate`;
  const confCopy = path.join(settings.stateDir, "squid-parse.conf");
  const confText = await readFile(settings.confPath, "utf8").catch((error: Error) => {
    throw new Error(`cannot read squid.conf at ${settings.confPath}: ${error.message}`);
  });
  const text = await confWithCandidate(confText, settings.includePath, candidate);
  if (text === null) {
    return {
      ok: false,
      error: `${settings.confPath} has no include line for ${settings.includePath}: add "include ${settings.includePath}"`,
    };
  }
  try {
    await writeFile(candidate, includeText, { mode: 0o644 });
    await writeFile(confCopy, text, { mode: 0o644 });
    const run = await runSquid(settings.binary, ["-k", "parse", "-f", confCopy]);
    if (run.code !== 0) {
      return { ok: false, error: `squid -k parse rejected the include: ${squidComplaint(run.output)}` };
    }
    return { ok: true };
  } finally {
    await rm(candidate, { force: true });
    await rm(confCopy, { force: true });
  }
}

/** `squid -k reconfigure`; ok=false with Squid's words when no Squid runs or it refused. */
export async function reconfigure(settings: SquidSettings): Promise<ParseResult> {
  const run = await runSquid(settings.binary, ["-k", "reconfigure", "-f", settings.confPath]);
  return run.code === 0 ? { ok: true } : { ok: false, error: squidComplaint(run.output) };
}
