// The doctor's checks of the way to the master: DNS, TCP, TLS, the node token (one real poll) and
// the clock skew the master's Date header shows.
import { lookup } from "node:dns/promises";
import { createConnection, isIP } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { MasterClient } from "../master/client";
import type { FetchLike } from "../ports";
import { type CheckResult, type DoctorContext, skipped } from "./result";

const NET_TIMEOUT_MS = 5_000;
const MAX_SKEW_SECONDS = 30;

export async function checkDns(host: string): Promise<CheckResult> {
  const name = `master host ${host} resolves`;
  if (isIP(host)) return { name, status: "ok", detail: "is an IP address" };
  try {
    const addresses = await lookup(host, { all: true });
    return { name, status: "ok", detail: addresses.map((a) => a.address).join(", ") };
  } catch (error) {
    return {
      name,
      status: "fail",
      detail: (error as NodeJS.ErrnoException).code ?? String(error),
      hint: "check /etc/resolv.conf and the master URL in config.json (re-enroll to change it)",
    };
  }
}

export function checkTcp(host: string, port: number): Promise<CheckResult> {
  const name = `TCP connect to ${host}:${port}`;
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = createConnection({ host, port, timeout: NET_TIMEOUT_MS });
    const finish = (result: CheckResult) => {
      socket.destroy();
      resolve(result);
    };
    socket.once("connect", () =>
      finish({ name, status: "ok", detail: `connected in ${Date.now() - started} ms` }),
    );
    socket.once("timeout", () =>
      finish({
        name,
        status: "fail",
        detail: "timed out",
        hint: `a firewall drops traffic to port ${port}: allow this node to reach the master`,
      }),
    );
    socket.once("error", (error: NodeJS.ErrnoException) =>
      finish({
        name,
        status: "fail",
        detail: error.code ?? error.message,
        hint: `nothing accepts connections on ${host}:${port}: check the master is up and the firewall allows port ${port}`,
      }),
    );
  });
}

export function checkTls(host: string, port: number): Promise<CheckResult> {
  const name = "TLS handshake";
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host,
      port,
      servername: isIP(host) ? undefined : host,
      timeout: NET_TIMEOUT_MS,
    });
    const finish = (result: CheckResult) => {
      socket.destroy();
      resolve(result);
    };
    socket.once("secureConnect", () => {
      const cert = socket.getPeerCertificate();
      const until = cert?.valid_to ? `, certificate valid until ${cert.valid_to}` : "";
      finish({ name, status: "ok", detail: `${socket.getProtocol() ?? "TLS"}${until}` });
    });
    socket.once("timeout", () =>
      finish({ name, status: "fail", detail: "timed out", hint: "a middlebox may block TLS to the master" }),
    );
    socket.once("error", (error: NodeJS.ErrnoException) =>
      finish({
        name,
        status: "fail",
        detail: error.code ?? error.message,
        hint: "the master's certificate is not trusted here: check the system CA store, an intercepting proxy, and the clock",
      }),
    );
  });
}

export async function checkToken(ctx: DoctorContext): Promise<{ token: CheckResult; skew: CheckResult }> {
  const name = "node token accepted by master";
  if (!ctx.credentials) {
    return {
      token: {
        name,
        status: "fail",
        detail: "credentials.json missing",
        hint: "re-enroll: fleetgate-agent enroll --master URL --key KEY",
      },
      skew: skipped("clock skew vs master", "no credentials"),
    };
  }
  let dateHeader: string | null = null;
  const recordingFetch: FetchLike = async (input, init) => {
    const response = await ctx.fetch(input, init);
    dateHeader = response.headers.get("date");
    return response;
  };
  const master = new MasterClient({
    fetch: recordingFetch,
    masterUrl: ctx.config.masterUrl,
    nodeToken: ctx.credentials.nodeToken,
  });
  const result = await master.pollPolicy({
    etag: ctx.runtime?.appliedHash ?? null,
    waitSeconds: 0,
    signal: AbortSignal.timeout(NET_TIMEOUT_MS * 3),
  });
  let token: CheckResult;
  if (result.ok) {
    token = {
      name,
      status: "ok",
      detail:
        result.kind === "not-modified"
          ? "up to date (304)"
          : `policy served (200)${servedVersion(result.bytes)}`,
    };
  } else if (result.status === 401) {
    token = {
      name,
      status: "fail",
      detail: `${result.code}: ${result.message}`,
      hint: "revoked or unknown: re-enroll with a new enrollment key",
    };
  } else if (result.status === 403 && result.code === "IP_NOT_ALLOWED") {
    token = {
      name,
      status: "fail",
      detail: result.code,
      hint: "add this node's address to the master's agent allow list",
    };
  } else {
    token = {
      name,
      status: "fail",
      detail: `${result.code}: ${result.message}`,
      hint: "check the master's health (GET /healthz) and logs",
    };
  }
  return { token, skew: judgeSkew(dateHeader) };
}

function servedVersion(bytes: Uint8Array): string {
  try {
    const version = (JSON.parse(new TextDecoder().decode(bytes)) as { version?: unknown }).version;
    return typeof version === "number" ? `: v${version}` : "";
  } catch {
    return "";
  }
}

export function judgeSkew(dateHeader: string | null, nowMs = Date.now()): CheckResult {
  const name = "clock skew vs master";
  const masterMs = dateHeader ? Date.parse(dateHeader) : Number.NaN;
  if (Number.isNaN(masterMs)) return { name, status: "skip", detail: "master sent no Date header" };
  const skew = Math.round((nowMs - masterMs) / 1_000);
  const detail = `${skew >= 0 ? "+" : ""}${skew} s (Date header has 1 s resolution)`;
  if (Math.abs(skew) > MAX_SKEW_SECONDS) {
    return {
      name,
      status: "warn",
      detail,
      hint: "enable time sync (systemd-timesyncd or chrony): schedules and logs depend on it",
    };
  }
  return { name, status: "ok", detail };
}
