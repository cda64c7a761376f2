// Proxy credentials: PBKDF2 is deliberately slow, so a successful (user, password) pair is cached
// for the life of the compiled policy, keyed by the password's SHA-256 (never the password), and a
// failed pair for FAILURE_CACHE_MS, so a client repeating wrong credentials costs no derive.
// Both caches are bounded; concurrent checks of one pair share a derive. A caller's gate (the
// proxy's per-client attempt limit) is asked before each derive and may refuse it.

import { sha256Base64Url } from "../encoding";
import { parsePasswordHash, verifyPassword } from "./password";
import type { CredentialGate, VerifiedUser } from "./types";

export const MAX_CACHED_CREDENTIALS = 10_000;
export const FAILURE_CACHE_MS = 30_000;

interface UserEntry {
  verified: VerifiedUser;
  passwordHash: string;
}

export class CredentialChecker {
  private readonly users = new Map<string, UserEntry>();
  private readonly cache = new Map<string, VerifiedUser>();
  /** Key → when the failure stops being remembered (insertion order is expiry order). */
  private readonly failed = new Map<string, number>();
  private readonly pending = new Map<string, Promise<VerifiedUser | null>>();
  private readonly decoyHash: string | null;

  constructor(
    users: readonly { name: string; passwordHash: string; groups: readonly string[] }[],
    private readonly now: () => number = Date.now,
  ) {
    let iterations = 0;
    for (const user of users) {
      const verified = Object.freeze({ name: user.name, groups: Object.freeze([...user.groups]) });
      this.users.set(user.name, { verified, passwordHash: user.passwordHash });
      iterations = Math.max(iterations, parsePasswordHash(user.passwordHash)?.iterations ?? 0);
    }
    this.decoyHash =
      iterations > 0 ? `pbkdf2-sha256$${iterations}$AAAAAAAAAAAAAAAAAAAAAA$${"A".repeat(43)}` : null;
  }

  async verify(user: string, password: string, gate?: CredentialGate): Promise<VerifiedUser | null> {
    const entry = this.users.get(user);
    const key = `${user}\u0000${await sha256Base64Url(password)}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    if (this.recentlyFailed(key)) return null;
    let check = this.pending.get(key);
    if (!check) {
      if (gate !== undefined && !gate.allowDerive()) return null;
      check = this.derive(key, entry, password, gate);
      this.pending.set(key, check);
    }
    return check;
  }

  private recentlyFailed(key: string): boolean {
    const until = this.failed.get(key);
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.failed.delete(key);
    return false;
  }

  private rememberFailure(key: string): void {
    const now = this.now();
    // Expired entries sit at the front; drop them, then make room if still full.
    for (const [old, until] of this.failed) {
      if (until > now && this.failed.size < MAX_CACHED_CREDENTIALS) break;
      this.failed.delete(old);
    }
    this.failed.delete(key);
    this.failed.set(key, now + FAILURE_CACHE_MS);
  }

  private async derive(
    key: string,
    entry: UserEntry | undefined,
    password: string,
    gate: CredentialGate | undefined,
  ): Promise<VerifiedUser | null> {
    let ok = false;
    try {
      if (!entry) {
        // Unknown users still pay one derive, so response time does not reveal which names exist.
        if (this.decoyHash) await verifyPassword(password, this.decoyHash);
      } else {
        ok = await verifyPassword(password, entry.passwordHash);
      }
      if (!ok || !entry) {
        this.rememberFailure(key);
        return null;
      }
      if (this.cache.size >= MAX_CACHED_CREDENTIALS) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, entry.verified);
      return entry.verified;
    } finally {
      this.pending.delete(key);
      gate?.derived(ok);
    }
  }

  get cachedCount(): number {
    return this.cache.size;
  }
}
