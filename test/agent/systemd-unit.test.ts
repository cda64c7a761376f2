// The shipped unit and the drop-in docs/agent.md tells users to install for a port below 1024:
// the capability settings are merged the way systemd merges them (a drop-in is read after the
// unit; an empty assignment resets the list, otherwise assignments add up), and the result is
// exactly CAP_NET_BIND_SERVICE, with nothing the bounding set would strip from the ambient set.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const UNIT = readFileSync(path.join(ROOT, "deploy/fleetgate-agent.service"), "utf8");
const DROP_IN = readFileSync(path.join(ROOT, "deploy/fleetgate-agent.service.d/low-port.conf"), "utf8");
const DOCS = readFileSync(path.join(ROOT, "docs/agent.md"), "utf8");

function effective(files: string[], key: string): Set<string> {
  let set = new Set<string>();
  for (const file of files) {
    for (const line of file.split("\n")) {
      const match = new RegExp(`^${key}=(.*)$`).exec(line.trim());
      if (!match) continue;
      const values = match[1]!.trim().split(/\s+/).filter(Boolean);
      if (values.length === 0) set = new Set();
      else for (const value of values) set.add(value);
    }
  }
  return set;
}

describe("systemd unit hardening", () => {
  it("grants no capability by default", () => {
    expect([...effective([UNIT], "CapabilityBoundingSet")]).toEqual([]);
    expect([...effective([UNIT], "AmbientCapabilities")]).toEqual([]);
    expect(UNIT).toMatch(/^NoNewPrivileges=yes$/m);
  });

  it("with the documented drop-in: exactly CAP_NET_BIND_SERVICE, ambient within the bounding set", () => {
    const bounding = effective([UNIT, DROP_IN], "CapabilityBoundingSet");
    const ambient = effective([UNIT, DROP_IN], "AmbientCapabilities");
    expect([...bounding]).toEqual(["CAP_NET_BIND_SERVICE"]);
    expect([...ambient]).toEqual(["CAP_NET_BIND_SERVICE"]);
    // Uncommenting lines above the unit's empty assignment (the old advice) would have granted nothing.
    expect([
      ...effective([`CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n${UNIT}`], "CapabilityBoundingSet"),
    ]).toEqual([]);
  });

  it("the docs show the drop-in as shipped and install it where systemd reads drop-ins", () => {
    const body = DROP_IN.split("\n")
      .filter((line) => line && !line.startsWith("#"))
      .join("\n");
    expect(DOCS).toContain(`\`\`\`ini\n${body}\n\`\`\``);
    expect(DOCS).toContain("/etc/systemd/system/fleetgate-agent.service.d/");
    expect(DOCS).not.toMatch(/uncomment/i);
  });

  it("systemd itself parses the unit with the drop-in", () => {
    if (!existsSync("/usr/bin/systemd-analyze")) return;
    const dir = mkdtempSync(path.join(os.tmpdir(), "fg-unit-"));
    try {
      // The unit refers to the installed binary; point it at one that exists for the check.
      writeFileSync(
        path.join(dir, "fleetgate-agent.service"),
        UNIT.replace("/usr/local/bin/fleetgate-agent", "/bin/true"),
      );
      mkdirSync(path.join(dir, "fleetgate-agent.service.d"));
      writeFileSync(path.join(dir, "fleetgate-agent.service.d", "low-port.conf"), DROP_IN);
      let output = "";
      try {
        output = execFileSync("systemd-analyze", ["verify", path.join(dir, "fleetgate-agent.service")], {
          encoding: "utf8",
          stdio: ["ignore", "pipe", "pipe"],
          env: { ...process.env, SYSTEMD_UNIT_PATH: `${dir}:` },
        });
      } catch (error) {
        output = `${(error as { stdout?: string }).stdout ?? ""}${(error as { stderr?: string }).stderr ?? ""}`;
      }
      // Unknown keys or bad values would be named; the environment may lack a running systemd.
      expect(output).not.toMatch(/Unknown key|Failed to parse|Invalid/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
