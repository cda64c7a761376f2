import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { expect } from "vitest";

export const BOOTSTRAP = env.FLEETGATE_BOOTSTRAP_TOKEN!;
export const BASE = "https://master.test";

export interface CallOptions {
  method?: string;
  token?: string | null;
  body?: unknown;
  rawBody?: BodyInit;
  headers?: Record<string, string>;
  address?: string;
}

/** Calls the real Worker entry (all middleware, real D1) the way a client over HTTPS would. */
export async function call(path: string, options: CallOptions = {}): Promise<Response> {
  const headers = new Headers(options.headers);
  const token = options.token === undefined ? BOOTSTRAP : options.token;
  if (token) headers.set("Authorization", `Bearer ${token}`);
  headers.set("CF-Connecting-IP", options.address ?? "203.0.113.10");
  let body: BodyInit | undefined = options.rawBody;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  }
  return exports.default.fetch(
    new Request(`${BASE}${path}`, { method: options.method ?? (body ? "POST" : "GET"), headers, body }),
  );
}

export async function json<T = Record<string, unknown>>(response: Response, status: number): Promise<T> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as T;
}

export interface ErrorShape {
  error: { code: string; message: string; requestId: string; details?: { path: string; message: string }[] };
}

/** Asserts the uniform error body and returns it. */
export async function expectError(response: Response, status: number, code: string): Promise<ErrorShape> {
  const body = await json<ErrorShape>(response, status);
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(body.error.requestId).toMatch(/[0-9a-f-]{36}/);
  return body;
}
