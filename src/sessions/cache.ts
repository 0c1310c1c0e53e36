import type { Role, SessionRow, UserRow } from '../db/schema.js';

/** What a session lookup resolves to (sessions/store.ts findSessionWithUser). */
export interface SessionWithUser {
  session: SessionRow;
  user: UserRow;
}

/**
 * Whether the cache may answer now, and what must be forgotten first. The engine-specific half
 * (sessions/cache-sync.ts): on PostgreSQL a LISTEN connection that is up (while it is down
 * nothing is answered from memory); on SQLite the database file's change counters.
 */
/** A membership as GET /api/auth/session lists it (organizations/service.ts listMine). */
export interface MembershipSummary {
  id: string;
  name: string;
  slug: string;
  role: Role;
}

export interface CacheFreshness {
  /** False: answer from the database (the cache cannot know what changed meanwhile). */
  usable(): boolean;
}

export interface SessionCacheOptions {
  /** Entries kept at most (the oldest goes first). */
  maxEntries: number;
  /** An entry is re-read from the database after this long, whatever happened (defence in depth). */
  maxAgeMs: number;
  now: () => number;
}

interface Entry {
  value: SessionWithUser;
  storedAt: number;
  keys: Set<string>;
}

/**
 * The per-instance session cache (SPEC §12, issue #16): live sessions and their users, by the
 * token hash of the cookie (`t:`) and by session id (`i:`, bearer access tokens and refresh
 * tokens), and the memberships of those users (GET /api/auth/session lists them). Every change
 * that can make a cached answer wrong drops it:
 * - on this instance at once, from where the change is made (a session ended: logout/session-end.ts;
 *   its MFA completed; its user changed: users/store.ts; a membership added, changed or removed:
 *   organizations/store.ts; an organization renamed or deleted: organizations/service.ts);
 * - on every other instance through the database (sessions/cache-sync.ts), within a second.
 * A lookup that started before a drop never stores what it read (the generation check), so a
 * read racing a revocation cannot put the revoked session back. Only live sessions are stored;
 * expiry is checked on every hit by the caller.
 */
export function createSessionCache(options: SessionCacheOptions) {
  const entries = new Map<string, Entry>();
  const bySession = new Map<string, Entry>();
  const byUser = new Map<string, Set<Entry>>();
  const memberships = new Map<string, MembershipSummary[]>();
  let generation = 0;
  let freshness: CacheFreshness = { usable: () => true };

  function remove(entry: Entry) {
    for (const key of entry.keys) entries.delete(key);
    bySession.delete(entry.value.session.id);
    const forUser = byUser.get(entry.value.user.id);
    forUser?.delete(entry);
    if (forUser?.size === 0) {
      byUser.delete(entry.value.user.id);
      memberships.delete(entry.value.user.id);
    }
  }

  return {
    /** Install the engine's freshness check (server.ts, once). */
    setFreshness(f: CacheFreshness) {
      freshness = f;
    },

    /**
     * The cached value under a key, or null; `stamp` is what `store` needs to accept a value
     * read from the database after this miss (the generation at the time of the lookup).
     */
    lookup(key: string): { hit: SessionWithUser | null; stamp: number } {
      if (!freshness.usable()) return { hit: null, stamp: -1 };
      const stamp = generation;
      const entry = entries.get(key);
      if (!entry) return { hit: null, stamp };
      if (options.now() - entry.storedAt >= options.maxAgeMs) {
        remove(entry);
        return { hit: null, stamp };
      }
      return { hit: entry.value, stamp };
    },

    /** Keep a live session read from the database, unless something was dropped since `stamp`. */
    store(key: string, value: SessionWithUser, stamp: number): void {
      if (stamp !== generation || stamp < 0 || value.session.revoked_at) return;
      let entry = bySession.get(value.session.id);
      if (entry && entry.value.user.id === value.user.id) {
        entry.value = value;
        entry.storedAt = options.now();
      } else {
        if (entry) remove(entry);
        if (bySession.size >= options.maxEntries) {
          const oldest = entries.values().next().value;
          if (oldest) remove(oldest);
        }
        entry = { value, storedAt: options.now(), keys: new Set() };
        bySession.set(value.session.id, entry);
        let forUser = byUser.get(value.user.id);
        if (!forUser) byUser.set(value.user.id, (forUser = new Set()));
        forUser.add(entry);
      }
      entry.keys.add(key);
      entries.set(key, entry);
    },

    /** The cached memberships of a user, or null; `stamp` as for `lookup`. */
    lookupMemberships(userId: string): { hit: MembershipSummary[] | null; stamp: number } {
      if (!freshness.usable()) return { hit: null, stamp: -1 };
      return { hit: memberships.get(userId) ?? null, stamp: generation };
    },

    /** Keep a user's memberships, only while one of its sessions is cached (they leave with it). */
    storeMemberships(userId: string, list: MembershipSummary[], stamp: number): void {
      if (stamp !== generation || stamp < 0 || !byUser.has(userId)) return;
      memberships.set(userId, list);
    },

    dropSessions(sessionIds: readonly string[]): void {
      generation++;
      for (const id of sessionIds) {
        const entry = bySession.get(id);
        if (entry) remove(entry);
      }
    },

    dropUser(userId: string): void {
      generation++;
      for (const entry of [...(byUser.get(userId) ?? [])]) remove(entry);
      memberships.delete(userId);
    },

    /** An organization was renamed or deleted: every cached membership list may name it. */
    dropOrganization(_organizationId: string): void {
      generation++;
      memberships.clear();
    },

    clear(): void {
      generation++;
      memberships.clear();
      entries.clear();
      bySession.clear();
      byUser.clear();
    },

    get size(): number {
      return bySession.size;
    },
  };
}

export type SessionCache = ReturnType<typeof createSessionCache>;

/** What a change to sessions or users tells the cache of this instance (the rest learn it from the database). */
export type SessionCacheDrops = Pick<SessionCache, 'dropSessions' | 'dropUser' | 'dropOrganization'>;

export const cacheKeyOfToken = (tokenHash: string) => `t:${tokenHash}`;
export const cacheKeyOfSession = (sessionId: string) => `i:${sessionId}`;
