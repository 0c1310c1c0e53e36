import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type CryptoKey, type JWK, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { HOUR, MINUTE, type Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { KeyRing } from '../crypto/keyring.js';
import { sealContext, SEALED_COLUMNS } from '../crypto/sealed-columns.js';
import { randomToken } from '../crypto/tokens.js';
import type { DatabaseHandle, Db } from '../db/database.js';
import type { SigningKeyRow } from '../db/schema.js';
import type { Logger } from '../logger.js';
import { deleteSigningKeys, insertFirstSigningKey, insertSigningKey, listSigningKeys } from './signing-keys-store.js';

/**
 * SPEC §8 signing keys: an ES256 (P-256) key ring in the database, private keys sealed.
 *
 * A key's life, with `delay` = GATEHOUSE_KEY_ACTIVATION_DELAY:
 *   created (published in the JWKS) → activates_at = created + delay (signs) →
 *   retired when the next key activates (still published, signs nothing) →
 *   removed from the JWKS once every token it signed has expired (retired + MAX_SIGNED_LIFETIME).
 *
 * The signer is the key with the latest activation not in the future, so every instance reading
 * the same rows picks the same key; the rows are cached for CACHE_TTL_MS, during which an
 * instance may keep signing with the previous key — which is still published, so nothing breaks.
 *
 * A removed key is out of the JWKS and verifies nothing from its published-until time on, whether
 * or not its row is gone yet; rows are deleted by `rotate()`/`prune()` (the CLI) and by every
 * instance when it reads the ring (at most every PRUNE_INTERVAL_MS).
 */

export const SIGNING_ALG = 'ES256' as const;
/** The longest life of anything Gatehouse signs (access tokens ≤ 1 h, ID tokens 1 h, logout tokens 2 min), plus clock skew. */
export const MAX_SIGNED_LIFETIME_MS = HOUR + 5 * MINUTE;
/** How long an instance trusts its copy of the ring before reading it again. */
export const CACHE_TTL_MS = 30_000;
/** A running instance deletes expired keys when it reads the ring, at most this often. */
export const PRUNE_INTERVAL_MS = 5 * MINUTE;
/** A token with a kid this instance does not know makes it read the ring again at most this often. */
export const UNKNOWN_KID_RELOAD_MS = 5_000;

export type KeyState = 'pending' | 'active' | 'retired';

export interface SigningKeyView {
  kid: string;
  alg: typeof SIGNING_ALG;
  state: KeyState;
  createdAt: string;
  activatesAt: string;
  /** When the next key took over (retired keys only). */
  retiredAt: string | null;
  /** When the key leaves the JWKS (retired keys only). */
  publishedUntil: string | null;
}

interface LoadedKey {
  row: SigningKeyRow;
  publicJwk: JWK;
}

export class SigningKeyError extends Error {
  override name = 'SigningKeyError';
}

/** Where each key of the ring stands at `now` (rows ordered by activation). */
export function keyStates(rows: readonly SigningKeyRow[], now: Date): SigningKeyView[] {
  const nowIso = now.toISOString();
  return rows.map((row, i) => {
    // Retired the moment a later key activated (a later row whose activation has come).
    const successor = rows.slice(i + 1).find((r) => r.activates_at <= nowIso);
    const state: KeyState = row.activates_at > nowIso ? 'pending' : successor ? 'retired' : 'active';
    const retiredAt = state === 'retired' && successor ? successor.activates_at : null;
    return {
      kid: row.id,
      alg: SIGNING_ALG,
      state,
      createdAt: row.created_at,
      activatesAt: row.activates_at,
      retiredAt,
      publishedUntil: retiredAt ? new Date(Date.parse(retiredAt) + MAX_SIGNED_LIFETIME_MS).toISOString() : null,
    };
  });
}

export function createSigningKeys(deps: {
  db: Db;
  /** Which engine `db` runs on (the first-key insert guards the start-up race differently). */
  database: Pick<DatabaseHandle, 'engine'>;
  clock: Clock;
  keyring: KeyRing;
  config: Pick<Config, 'keyActivationDelayMs'>;
  logger?: Logger;
}) {
  const { db, clock, keyring } = deps;
  const engine = deps.database.engine;
  const sealed = SEALED_COLUMNS.find((c) => c.table === 'signing_keys')!;
  let cache: { at: number; keys: LoadedKey[] } | null = null;
  let reading: Promise<LoadedKey[]> | null = null;
  let lastPruneAt: number | null = null;
  let lastUnknownKidReloadAt: number | null = null;
  const privateKeys = new Map<string, Promise<CryptoKey>>();
  const publicKeys = new Map<string, Promise<CryptoKey>>();

  /** A new key, published from now and signing `delayMs` later. */
  async function newKeyRow(delayMs: number): Promise<SigningKeyRow> {
    const createdAt = clock.now();
    const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
    const kid = `${createdAt.toISOString().slice(0, 10).replaceAll('-', '')}-${randomToken(6)}`;
    const pub = { ...(await exportJWK(publicKey)), kid, alg: SIGNING_ALG, use: 'sig' };
    const priv = { ...(await exportJWK(privateKey)), kid, alg: SIGNING_ALG, use: 'sig' };
    return {
      id: kid,
      alg: SIGNING_ALG,
      public_jwk: JSON.stringify(pub),
      private_jwk_enc: keyring.encrypt(JSON.stringify(priv), sealContext(sealed, kid)),
      created_at: createdAt.toISOString(),
      activates_at: new Date(createdAt.getTime() + delayMs).toISOString(),
    };
  }

  /** Kids of the keys whose published time is over at `now` (every token they signed has expired). */
  function expiredKids(rows: readonly SigningKeyRow[], now: Date): string[] {
    const nowIso = now.toISOString();
    return keyStates(rows, now)
      .filter((k) => k.publishedUntil !== null && k.publishedUntil <= nowIso)
      .map((k) => k.kid);
  }

  /** Read the ring; create the first key when there is none; delete expired keys at most every PRUNE_INTERVAL_MS. */
  async function read(): Promise<LoadedKey[]> {
    const now = clock.now();
    const nowMs = now.getTime();
    let rows = await listSigningKeys(db);
    if (rows.length === 0) {
      // First start: a key that signs at once (no cache anywhere can know an older set).
      const first = await newKeyRow(0);
      const created = await insertFirstSigningKey(db, engine, first);
      rows = await listSigningKeys(db);
      if (created) deps.logger?.info({ kid: first.id }, 'created the first token signing key');
    }
    // A long-running instance removes keys nobody may trust any more, without the CLI. Published
    // filtering keeps them out of the JWKS and verification already; the delete only tidies the table.
    const gone = expiredKids(rows, now);
    if (gone.length && (lastPruneAt === null || nowMs - lastPruneAt >= PRUNE_INTERVAL_MS || nowMs < lastPruneAt)) {
      lastPruneAt = nowMs;
      try {
        await deleteSigningKeys(db, gone);
        rows = rows.filter((r) => !gone.includes(r.id));
        deps.logger?.info({ removed: gone }, 'removed expired token signing keys');
      } catch (err) {
        deps.logger?.warn({ err, kids: gone }, 'could not remove expired token signing keys; trying again later');
      }
    }
    const kids = new Set(rows.map((r) => r.id));
    for (const map of [privateKeys, publicKeys]) for (const kid of map.keys()) if (!kids.has(kid)) map.delete(kid);
    const keys = rows.map((row) => ({ row, publicJwk: JSON.parse(row.public_jwk) as JWK }));
    cache = { at: nowMs, keys };
    return keys;
  }

  async function load(force = false): Promise<LoadedKey[]> {
    const nowMs = clock.now().getTime();
    if (!force && cache && nowMs - cache.at < CACHE_TTL_MS && nowMs >= cache.at) return cache.keys;
    // Concurrent requests at the end of the TTL share one read; a forced read (after a write) reads anew.
    if (force) return read();
    reading ??= read().finally(() => {
      reading = null;
    });
    return reading;
  }

  /** Import once per kid; a failed import is not remembered (the next call tries again). */
  function imported(map: Map<string, Promise<CryptoKey>>, kid: string, jwk: () => JWK): Promise<CryptoKey> {
    let p = map.get(kid);
    if (!p) {
      p = (importJWK(jwk(), SIGNING_ALG) as Promise<CryptoKey>).catch((e: unknown) => {
        map.delete(kid);
        throw e;
      });
      map.set(kid, p);
    }
    return p;
  }

  let providerSet: { version: string; keys: JWK[] } | null = null;
  const privateJwkOf = (row: SigningKeyRow) => JSON.parse(keyring.decrypt(row.private_jwk_enc, sealContext(sealed, row.id))) as JWK;
  const privateKeyOf = (row: SigningKeyRow) => imported(privateKeys, row.id, () => privateJwkOf(row));
  const publicKeyOf = (key: LoadedKey) => imported(publicKeys, key.row.id, () => key.publicJwk);

  /** The keys a verifier may trust now: every key not yet past its published-until time. */
  function published(keys: LoadedKey[], now: Date): LoadedKey[] {
    const gone = new Set(expiredKids(keys.map((k) => k.row), now));
    return keys.filter((k) => !gone.has(k.row.id));
  }

  function signerOf(keys: LoadedKey[], now: Date): LoadedKey {
    const nowIso = now.toISOString();
    const active = keys.filter((k) => k.row.activates_at <= nowIso);
    const signer = active[active.length - 1];
    if (!signer) throw new SigningKeyError('no signing key is active yet (every key in the ring activates in the future)');
    return signer;
  }

  /** Delete keys that are no longer published (every token they signed has expired). */
  async function prune(): Promise<string[]> {
    const now = clock.now();
    const gone = expiredKids(await listSigningKeys(db), now);
    await deleteSigningKeys(db, gone);
    lastPruneAt = now.getTime();
    if (gone.length) {
      cache = null;
      deps.logger?.info({ removed: gone }, 'removed expired token signing keys');
    }
    return gone;
  }

  return {
    /** The public JWKS: pending, active and not-yet-expired retired keys (GET /.well-known/jwks.json). */
    async jwks(): Promise<{ keys: JWK[] }> {
      const keys = published(await load(), clock.now());
      return { keys: keys.map((k) => ({ ...k.publicJwk })) };
    },

    /**
     * The private JWKs for the OpenID Provider, the signer first (oidc-provider signs with the
     * first key of the algorithm) and `version` naming the set, so the provider is rebuilt when
     * the set or the signer changes.
     */
    async providerKeys(): Promise<{ version: string; keys: JWK[] }> {
      // The time is read after the ring: on a first start, load() creates the first key, which
      // activates when it is made (read before, that key was "not active yet": a 500 on the
      // first provider request of a new installation).
      const loaded = await load();
      const now = clock.now();
      const keys = published(loaded, now);
      const signer = signerOf(keys, now);
      const ordered = [signer, ...keys.filter((k) => k !== signer)];
      const version = ordered.map((k) => k.row.id).join(',');
      // Asked on every provider request: the private keys are unsealed only when the set changes.
      if (providerSet?.version !== version) providerSet = { version, keys: ordered.map((k) => privateJwkOf(k.row)) };
      return providerSet;
    },

    /** The kid that signs now. */
    async currentKid(): Promise<string> {
      return signerOf(await load(), clock.now()).row.id;
    },

    /** Sign a JWT with the current key: header `{alg: ES256, kid, typ}`. */
    async sign(payload: JWTPayload, typ: string): Promise<string> {
      const signer = signerOf(await load(), clock.now());
      return new SignJWT(payload)
        .setProtectedHeader({ alg: SIGNING_ALG, kid: signer.row.id, typ })
        .sign(await privateKeyOf(signer.row));
    },

    /**
     * Verify a JWT that Gatehouse signed: ES256 only (`alg: none` and every other algorithm
     * refused), a `kid` of a key published now (a removed key verifies nothing), the exact `typ`.
     * Throws jose's errors (their `code`) or SigningKeyError.
     */
    async verify(token: string, options: Omit<JWTVerifyOptions, 'algorithms' | 'typ' | 'currentDate'> & { typ: string }): Promise<JWTPayload> {
      const now = clock.now();
      const nowMs = now.getTime();
      let keys = published(await load(), now);
      const kid = kidOf(token);
      if (kid === null) throw new SigningKeyError('the token has no kid');
      let key = keys.find((k) => k.row.id === kid);
      // Another instance may have rotated since this one read the ring. Read again — but at most
      // every UNKNOWN_KID_RELOAD_MS, so tokens with made-up kids cannot turn into a database read each.
      if (!key && (lastUnknownKidReloadAt === null || nowMs - lastUnknownKidReloadAt >= UNKNOWN_KID_RELOAD_MS || nowMs < lastUnknownKidReloadAt)) {
        lastUnknownKidReloadAt = nowMs;
        keys = published(await load(true), now);
        key = keys.find((k) => k.row.id === kid);
      }
      if (!key) throw new SigningKeyError('the token was signed by a key that is not published');
      const { payload } = await jwtVerify(token, await publicKeyOf(key), {
        ...options,
        algorithms: [SIGNING_ALG],
        currentDate: now,
      });
      return payload;
    },

    /**
     * `gatehouse keys rotate`: add a key that is published now and signs after the activation
     * delay (at once when the ring is empty). Keys whose published time is over are deleted
     * (`removed`).
     */
    async rotate(): Promise<SigningKeyView & { removed: string[] }> {
      const now = clock.now();
      let row: SigningKeyRow | null = null;
      if ((await listSigningKeys(db)).length === 0) {
        // An empty ring: the key signs at once — unless an instance created its first key meanwhile.
        const first = await newKeyRow(0);
        if (await insertFirstSigningKey(db, engine, first)) row = first;
      }
      if (!row) {
        row = await newKeyRow(deps.config.keyActivationDelayMs);
        await insertSigningKey(db, row);
      }
      const removed = await prune();
      cache = null;
      // Stated after the insert: the key's own times were read from the clock after `now`.
      const view = keyStates(await listSigningKeys(db), clock.now()).find((k) => k.kid === row.id)!;
      deps.logger?.info({ kid: row.id, activatesAt: row.activates_at, removed }, 'signing key rotated');
      return { ...view, removed };
    },

    prune,

    /** `gatehouse keys list`: every key in the table, expired ones not yet deleted included (read only). */
    async list(): Promise<SigningKeyView[]> {
      return keyStates(await listSigningKeys(db), clock.now());
    },

    /** Forget the cached ring (tests; after a rotation on another instance). */
    refresh(): void {
      cache = null;
    },
  };
}

/** The `kid` of a compact JWS header, or null when there is none or the header is not JSON. */
export function kidOf(token: string): string | null {
  const head = token.split('.')[0];
  if (!head) return null;
  try {
    const header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as { kid?: unknown };
    return typeof header.kid === 'string' ? header.kid : null;
  } catch {
    return null;
  }
}

export type SigningKeys = ReturnType<typeof createSigningKeys>;
