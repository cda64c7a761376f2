// Proxy credentials: PBKDF2 is deliberately slow, so a successful (user, password) pair is cached
// for the life of the compiled policy, keyed by the password's SHA-256 (never the password).
// The cache is bounded; failures are not cached, and concurrent checks of one pair share a derive.

import { sha256Base64Url } from "../encoding";
import { parsePasswordHash, verifyPassword } from "./password";
import type { VerifiedUser } from "./types";

export const MAX_CACHED_CREDENTIALS = 10_000;

interface UserEntry {
  verified: VerifiedUser;
  passwordHash: string;
}

export class CredentialChecker {
  private readonly users = new Map<string, UserEntry>();
  private readonly cache = new Map<string, VerifiedUser>();
  private readonly pending = new Map<string, Promise<VerifiedUser | null>>();
  // Unknown users still pay one derive, so response time does not reveal which names exist.
  private readonly decoyHash: string | null;

  constructor(users: readonly { name: string; passwordHash: string; groups: readonly string[] }[]) {
    let iterations = 0;
    for (const user of users) {
      const verified = Object.freeze({ name: user.name, groups: Object.freeze([...user.groups]) });
      this.users.set(user.name, { verified, passwordHash: user.passwordHash });
      iterations = Math.max(iterations, parsePasswordHash(user.passwordHash)?.iterations ?? 0);
    }
    this.decoyHash =
      iterations > 0 ? `pbkdf2-sha256$${iterations}$AAAAAAAAAAAAAAAAAAAAAA$${"A".repeat(43)}` : null;
  }

  async verify(user: string, password: string): Promise<VerifiedUser | null> {
    const entry = this.users.get(user);
    if (!entry) {
      if (this.decoyHash) await verifyPassword(password, this.decoyHash);
      return null;
    }
    const key = `${user}\u0000${await sha256Base64Url(password)}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    let check = this.pending.get(key);
    if (!check) {
      check = this.derive(key, entry, password);
      this.pending.set(key, check);
    }
    return check;
  }

  private async derive(key: string, entry: UserEntry, password: string): Promise<VerifiedUser | null> {
    try {
      if (!(await verifyPassword(password, entry.passwordHash))) return null;
      if (this.cache.size >= MAX_CACHED_CREDENTIALS) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, entry.verified);
      return entry.verified;
    } finally {
      this.pending.delete(key);
    }
  }

  get cachedCount(): number {
    return this.cache.size;
  }
}
