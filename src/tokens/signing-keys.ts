import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type CryptoKey, type JWK, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { HOUR, MINUTE, type Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { KeyRing } from '../crypto/keyring.js';
import { sealContext, SEALED_COLUMNS } from '../crypto/sealed-columns.js';
import { randomToken } from '../crypto/tokens.js';
import type { Db } from '../db/database.js';
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
 */

export const SIGNING_ALG = 'ES256' as const;
/** The longest life of anything Gatehouse signs (access tokens ≤ 1 h, ID tokens 1 h, logout tokens 2 min), plus clock skew. */
export const MAX_SIGNED_LIFETIME_MS = HOUR + 5 * MINUTE;
/** How long an instance trusts its copy of the ring before reading it again. */
export const CACHE_TTL_MS = 30_000;

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

export function createSigningKeys(deps: { db: Db; clock: Clock; keyring: KeyRing; config: Pick<Config, 'keyActivationDelayMs'>; logger?: Logger }) {
  const { db, clock, keyring } = deps;
  const sealed = SEALED_COLUMNS.find((c) => c.table === 'signing_keys')!;
  let cache: { at: number; keys: LoadedKey[] } | null = null;
  const privateKeys = new Map<string, Promise<CryptoKey>>();
  /** Imported public keys by kid (a key's material never changes), so a verification imports nothing. */
  const publicKeys = new Map<string, Promise<CryptoKey>>();

  async function newKeyRow(activatesAt: Date): Promise<SigningKeyRow> {
    const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
    const kid = `${clock.now().toISOString().slice(0, 10).replaceAll('-', '')}-${randomToken(6)}`;
    const pub = { ...(await exportJWK(publicKey)), kid, alg: SIGNING_ALG, use: 'sig' };
    const priv = { ...(await exportJWK(privateKey)), kid, alg: SIGNING_ALG, use: 'sig' };
    return {
      id: kid,
      alg: SIGNING_ALG,
      public_jwk: JSON.stringify(pub),
      private_jwk_enc: keyring.encrypt(JSON.stringify(priv), sealContext(sealed, kid)),
      created_at: clock.now().toISOString(),
      activates_at: activatesAt.toISOString(),
    };
  }

  async function load(force = false): Promise<LoadedKey[]> {
    const nowMs = clock.now().getTime();
    if (!force && cache && nowMs - cache.at < CACHE_TTL_MS && nowMs >= cache.at) return cache.keys;
    let rows = await listSigningKeys(db);
    if (rows.length === 0) {
      // First start: a key that signs at once (no cache anywhere can know an older set).
      await insertFirstSigningKey(db, await newKeyRow(clock.now()));
      rows = await listSigningKeys(db);
      deps.logger?.info({ kid: rows[0]?.id }, 'created the first token signing key');
    }
    const keys = rows.map((row) => ({ row, publicJwk: JSON.parse(row.public_jwk) as JWK }));
    cache = { at: nowMs, keys };
    return keys;
  }

  function privateKeyOf(row: SigningKeyRow): Promise<CryptoKey> {
    let p = privateKeys.get(row.id);
    if (!p) {
      const jwk = JSON.parse(keyring.decrypt(row.private_jwk_enc, sealContext(sealed, row.id))) as JWK;
      p = importJWK(jwk, SIGNING_ALG) as Promise<CryptoKey>;
      privateKeys.set(row.id, p);
    }
    return p;
  }

  /** The keys a verifier may trust now: every key not yet past its published-until time. */
  function published(keys: LoadedKey[], now: Date): LoadedKey[] {
    const states = keyStates(keys.map((k) => k.row), now);
    const nowIso = now.toISOString();
    return keys.filter((_, i) => {
      const s = states[i]!;
      return s.publishedUntil === null || s.publishedUntil > nowIso;
    });
  }

  function signerOf(keys: LoadedKey[], now: Date): LoadedKey {
    const nowIso = now.toISOString();
    const active = keys.filter((k) => k.row.activates_at <= nowIso);
    const signer = active[active.length - 1];
    if (!signer) throw new SigningKeyError('no signing key is active yet (every key in the ring activates in the future)');
    return signer;
  }

  return {
    /** The public JWKS: pending, active and not-yet-expired retired keys (GET /.well-known/jwks.json). */
    async jwks(): Promise<{ keys: JWK[] }> {
      const keys = published(await load(), clock.now());
      return { keys: keys.map((k) => k.publicJwk) };
    },

    /**
     * The private JWKs for the OpenID Provider, the signer first (oidc-provider signs with the
     * first key of the algorithm) and `version` naming the set, so the provider is rebuilt when
     * the set or the signer changes.
     */
    async providerKeys(): Promise<{ version: string; keys: JWK[] }> {
      const now = clock.now();
      const keys = published(await load(), now);
      const signer = signerOf(keys, now);
      const ordered = [signer, ...keys.filter((k) => k !== signer)];
      const jwks = ordered.map((k) => JSON.parse(keyring.decrypt(k.row.private_jwk_enc, sealContext(sealed, k.row.id))) as JWK);
      return { version: ordered.map((k) => k.row.id).join(','), keys: jwks };
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
      let keys = published(await load(), now);
      const kid = kidOf(token);
      if (kid === null) throw new SigningKeyError('the token has no kid');
      let key = keys.find((k) => k.row.id === kid);
      if (!key) {
        // Another instance may have rotated since this one read the ring.
        keys = published(await load(true), now);
        key = keys.find((k) => k.row.id === kid);
      }
      if (!key) throw new SigningKeyError('the token was signed by a key that is not published');
      let publicKey = publicKeys.get(kid);
      if (!publicKey) {
        publicKey = importJWK(key.publicJwk, SIGNING_ALG) as Promise<CryptoKey>;
        publicKeys.set(kid, publicKey);
      }
      const { payload } = await jwtVerify(token, await publicKey, {
        ...options,
        algorithms: [SIGNING_ALG],
        currentDate: now,
      });
      return payload;
    },

    /**
     * `gatehouse keys rotate`: add a key that is published now and signs after the activation
     * delay (at once when the ring is empty). Keys whose published time is over are deleted.
     */
    async rotate(): Promise<SigningKeyView> {
      const existing = await listSigningKeys(db);
      const now = clock.now();
      const row = await newKeyRow(existing.length ? new Date(now.getTime() + deps.config.keyActivationDelayMs) : now);
      await insertSigningKey(db, row);
      const removed = await this.prune();
      cache = null;
      const view = keyStates(await listSigningKeys(db), now).find((k) => k.kid === row.id)!;
      deps.logger?.info({ kid: row.id, activatesAt: row.activates_at, removed }, 'signing key rotated');
      return view;
    },

    /** Delete keys that are no longer published (every token they signed has expired). */
    async prune(): Promise<string[]> {
      const rows = await listSigningKeys(db);
      const nowIso = clock.now().toISOString();
      const gone = keyStates(rows, clock.now()).filter((k) => k.publishedUntil !== null && k.publishedUntil <= nowIso).map((k) => k.kid);
      await deleteSigningKeys(db, gone);
      if (gone.length) cache = null;
      return gone;
    },

    /** `gatehouse keys list`. */
    async list(): Promise<SigningKeyView[]> {
      await load(true);
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
