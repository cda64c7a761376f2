// The proxy's own answers (block page, 407, 502, …) as complete HTTP/1.1 responses.
// These are byte strings written straight to a socket, outside any JSX runtime, so every
// interpolated value goes through escapeHtml.

import type { CompiledPolicy, Decision } from "../../../protocol/policy/types";

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  403: "Forbidden",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

const encoder = new TextEncoder();

export interface PageOptions {
  status: number;
  title: string;
  /** Already-escaped HTML for inside <body>. */
  bodyHtml: string;
  requestId: string;
  keepAlive: boolean;
  extraHeaders?: string;
  /** HEAD requests get the head only. */
  headOnly?: boolean;
}

export function renderPage(options: PageOptions): Uint8Array {
  const html =
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(options.title)}</title>` +
    `<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}` +
    `.meta{color:#666;font-size:.9rem}</style></head><body><h1>${escapeHtml(options.title)}</h1>\n` +
    `${options.bodyHtml}\n<p class="meta">Request ID: <code>${escapeHtml(options.requestId)}</code> · fleetgate</p>` +
    "</body></html>\n";
  const body = encoder.encode(html);
  const head =
    `HTTP/1.1 ${options.status} ${REASONS[options.status] ?? "Error"}\r\n` +
    "Content-Type: text/html; charset=utf-8\r\n" +
    `Content-Length: ${body.byteLength}\r\n` +
    "Cache-Control: no-store\r\n" +
    `X-Fleetgate-Request-Id: ${options.requestId}\r\n` +
    (options.extraHeaders ?? "") +
    (options.keepAlive ? "" : "Connection: close\r\n") +
    "\r\n";
  const headBytes = Buffer.from(head, "latin1");
  if (options.headOnly) return headBytes;
  return Buffer.concat([headBytes, body]);
}

export function blockPage(
  compiled: CompiledPolicy,
  decision: Decision,
  url: string,
  requestId: string,
  keepAlive: boolean,
): Uint8Array {
  const { title, body } = compiled.blockPage;
  const rule = decision.rule;
  let html = `<p>${escapeHtml(body)}</p>\n<p>Address: <code>${escapeHtml(url)}</code></p>`;
  if (rule?.message) html += `\n<p>${escapeHtml(rule.message)}</p>`;
  if (rule) {
    const label = rule.name ? `${rule.name} (${rule.id})` : rule.id;
    html += `\n<p class="meta">Rule: ${escapeHtml(label)}</p>`;
  }
  return renderPage({ status: 403, title, bodyHtml: html, requestId, keepAlive });
}

export function simplePage(
  status: number,
  title: string,
  text: string,
  requestId: string,
  keepAlive: boolean,
  extraHeaders?: string,
): Uint8Array {
  return renderPage({
    status,
    title,
    bodyHtml: `<p>${escapeHtml(text)}</p>`,
    requestId,
    keepAlive,
    extraHeaders,
  });
}

/** Answer to a refused CONNECT: browsers never show a body there, so keep it short and plain. */
export function connectRefusal(
  status: number,
  text: string,
  requestId: string,
  extraHeaders = "",
): Uint8Array {
  const body = encoder.encode(`${text}\nRequest ID: ${requestId}\n`);
  const head =
    `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n` +
    "Content-Type: text/plain; charset=utf-8\r\n" +
    `Content-Length: ${body.byteLength}\r\n` +
    `X-Fleetgate-Request-Id: ${requestId}\r\n` +
    extraHeaders +
    "\r\n";
  return Buffer.concat([Buffer.from(head, "latin1"), body]);
}

/** A non-HTML answer of the proxy's own (OPTIONS and TRACE at Max-Forwards 0). */
export function plainAnswer(
  status: number,
  headers: string,
  body: Uint8Array,
  requestId: string,
  keepAlive: boolean,
): Uint8Array {
  const head =
    `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n` +
    headers +
    `Content-Length: ${body.byteLength}\r\n` +
    "Cache-Control: no-store\r\n" +
    `X-Fleetgate-Request-Id: ${requestId}\r\n` +
    (keepAlive ? "" : "Connection: close\r\n") +
    "\r\n";
  return Buffer.concat([Buffer.from(head, "latin1"), body]);
}
