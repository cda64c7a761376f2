// Password guessing costs the proxy a PBKDF2 derive per try, so each client address may start at
// most MAX_ATTEMPTS derives per window (failed ones and those still running; a right password
// gives its attempt back). Past that, credentials from the address that are not already known
// (verified or recently failed, credentials.ts caches both) get 429 without any hashing until the
// window ends. The table is bounded: past MAX_CLIENTS addresses the oldest window is forgotten.

import type { CredentialGate } from "../../../protocol/policy/types";

export const AUTH_ATTEMPTS_PER_WINDOW = 20;
export const AUTH_WINDOW_MS = 60_000;
const MAX_CLIENTS = 10_000;

interface Window {
  startedAt: number;
  attempts: number;
}

/** One request's gate: remembers whether it was refused, so the proxy can answer 429. */
export interface RequestGate extends CredentialGate {
  readonly limited: boolean;
}

export class AuthLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxAttempts = AUTH_ATTEMPTS_PER_WINDOW,
    private readonly windowMs = AUTH_WINDOW_MS,
  ) {}

  /** Seconds until the address may try again (for Retry-After). */
  retryAfterSeconds(client: string): number {
    const window = this.windows.get(client);
    if (window === undefined) return 0;
    return Math.max(1, Math.ceil((window.startedAt + this.windowMs - this.now()) / 1000));
  }

  gate(client: string): RequestGate {
    const limiter = this;
    let limited = false;
    let counted: Window | null = null;
    return {
      get limited() {
        return limited;
      },
      allowDerive() {
        const window = limiter.current(client);
        if (window.attempts >= limiter.maxAttempts) {
          limited = true;
          return false;
        }
        window.attempts++;
        counted = window;
        return true;
      },
      derived(ok: boolean) {
        if (ok && counted !== null && counted.attempts > 0) counted.attempts--;
      },
    };
  }

  private current(client: string): Window {
    const now = this.now();
    let window = this.windows.get(client);
    if (window !== undefined && now - window.startedAt < this.windowMs) return window;
    this.windows.delete(client);
    if (this.windows.size >= MAX_CLIENTS) this.windows.delete(this.windows.keys().next().value!);
    window = { startedAt: now, attempts: 0 };
    this.windows.set(client, window);
    return window;
  }
}
