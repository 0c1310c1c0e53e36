import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, exportSPKI, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { fixedClock, MINUTE } from '../../src/clock.js';
import { createKeyRing, KeyRingError, parseKeySpec } from '../../src/crypto/keyring.js';
import { resealAll } from '../../src/crypto/sealed-columns.js';
import { CACHE_TTL_MS, MAX_SIGNED_LIFETIME_MS, PRUNE_INTERVAL_MS, SigningKeyError } from '../../src/tokens/signing-keys.js';
import { createTestGatehouse, dropSchema, ENGINE, TEST_DATABASE_URL, testKeySpec, type TestGatehouse } from '../helpers/app.js';

/**
 * SPEC §8 signing keys: the ES256 key ring in the database, its JWKS, rotation with an
 * activation delay, removal once every token a key signed has expired, and the attacks a
 * verifier of our own tokens must refuse. Runs on SQLite, and on PostgreSQL with TEST_DATABASE_URL.
 */
const DELAY = 10 * MINUTE; // the default GATEHOUSE_KEY_ACTIVATION_DELAY
const TYP = 'at+jwt';

const open: TestGatehouse[] = [];
const schemas: string[] = [];
afterEach(async () => {
  for (const gh of open.splice(0)) await gh.destroy();
  for (const s of schemas.splice(0)) await dropSchema(s);
});

async function instance(options: Parameters<typeof createTestGatehouse>[0] = {}) {
  const gh = await createTestGatehouse(options);
  open.push(gh);
  return gh;
}

/** A database several instances share (a SQLite file, or one PostgreSQL schema) and one secret key ring, as a deployment has. */
function sharedDatabase(secretKeys = testKeySpec()) {
  const schema = TEST_DATABASE_URL ? `sk_${randomBytes(4).toString('hex')}` : undefined;
  if (schema) schemas.push(schema);
  const databaseUrl = TEST_DATABASE_URL ?? `sqlite:${mkdtempSync(join(tmpdir(), 'gh-keys-'))}/shared.db`;
  return (extra: { secretKeys?: string; clock?: ReturnType<typeof fixedClock> } = {}) =>
    instance({ databaseUrl, env: { GATEHOUSE_SECRET_KEYS: extra.secretKeys ?? secretKeys }, ...(schema ? { schema } : {}), ...(extra.clock ? { clock: extra.clock } : {}) });
}

const rows = (gh: TestGatehouse) => gh.deps.db.selectFrom('signing_keys').selectAll().orderBy('activates_at').execute();
const kidIn = (token: string) => decodeProtectedHeader(token).kid;
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

function claims(gh: TestGatehouse, lifetimeMs = 10 * MINUTE) {
  const now = Math.floor(gh.clock.now().getTime() / 1000);
  return { iss: 'http://localhost:3000', sub: 'user_1', aud: 'http://localhost:3000', iat: now, exp: now + Math.floor(lifetimeMs / 1000), jti: randomBytes(8).toString('hex') };
}

describe(`signing keys on ${ENGINE}`, () => {
  it('the first start creates exactly one active key; the JWKS is public, cacheable and holds only public ES256 members', async () => {
    const gh = await instance();
    expect(await rows(gh)).toHaveLength(0); // created on first use, not before

    const res = await gh.request('GET', '/.well-known/jwks.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    expect(res.headers.get('content-type')).toContain('application/jwk-set+json');
    const { keys } = res.body as { keys: JWK[] };
    expect(keys).toHaveLength(1);
    const [key] = keys as [JWK];
    expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(Object.keys(key).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    expect(key).not.toHaveProperty('d');

    const stored = await rows(gh);
    expect(stored).toHaveLength(1);
    expect(stored[0]!.id).toBe(key.kid);
    expect(await gh.services.signingKeys.currentKid()).toBe(key.kid);
    expect((await gh.services.signingKeys.list()).map((k) => k.state)).toEqual(['active']);
    // A second request (and a reload after the cache TTL) creates nothing more.
    gh.clock.advance(CACHE_TTL_MS + 1);
    await gh.request('GET', '/.well-known/jwks.json');
    expect(await rows(gh)).toHaveLength(1);
  });

  it('the private key in its row is sealed, and bound to its row: copied to another row it does not decrypt', async () => {
    const gh = await instance();
    const keys = gh.services.signingKeys;
    const first = await keys.currentKid();
    const [row] = await rows(gh);
    const sealed = row!.private_jwk_enc;
    expect(sealed).toMatch(/^v1\.test1\./);
    expect(() => JSON.parse(sealed)).toThrow();
    expect(sealed).not.toContain('"d"');
    // The keyring opens it in its own row's context, and the result is the private JWK.
    const jwk = JSON.parse(gh.deps.keyring.decrypt(sealed, `signing_keys.private_jwk_enc:${first}`)) as JWK;
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', kid: first });
    expect(typeof jwk.d).toBe('string');

    // Copy the first key's sealed value into a second key's row: once that key signs, it cannot be opened.
    const second = await keys.rotate();
    await gh.deps.db.updateTable('signing_keys').set({ private_jwk_enc: sealed }).where('id', '=', second.kid).execute();
    expect(() => gh.deps.keyring.decrypt(sealed, `signing_keys.private_jwk_enc:${second.kid}`)).toThrow(KeyRingError);
    gh.clock.advance(DELAY + 1);
    keys.refresh();
    expect(await keys.currentKid()).toBe(second.kid);
    await expect(keys.sign(claims(gh), TYP)).rejects.toThrow(KeyRingError);
    await expect(keys.providerKeys()).rejects.toThrow(KeyRingError);
  });

  it('rotation while tokens are in flight: the new key is published at once, signs only after the delay, and old tokens keep verifying', async () => {
    const gh = await instance();
    const keys = gh.services.signingKeys;
    const old = await keys.currentKid();
    const inFlight = await keys.sign(claims(gh, 60 * MINUTE), TYP);
    expect(kidIn(inFlight)).toBe(old);

    const added = await keys.rotate();
    expect(added).toMatchObject({ state: 'pending', removed: [] });
    expect(Date.parse(added.activatesAt) - gh.clock.now().getTime()).toBe(DELAY);
    // Published now, so verifiers' JWKS caches learn it before it signs …
    const jwks = (await gh.request('GET', '/.well-known/jwks.json')).body as { keys: JWK[] };
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual([old, added.kid].sort());
    // … but until the delay is over the old key still signs.
    gh.clock.advance(DELAY - 1000);
    expect(await keys.currentKid()).toBe(old);
    const beforeActivation = await keys.sign(claims(gh), TYP);
    expect(kidIn(beforeActivation)).toBe(old);
    expect((await keys.verify(inFlight, { typ: TYP })).jti).toBeTypeOf('string');

    gh.clock.advance(1000);
    expect(await keys.currentKid()).toBe(added.kid);
    const after = await keys.sign(claims(gh), TYP);
    expect(kidIn(after)).toBe(added.kid);
    for (const token of [inFlight, beforeActivation, after]) await expect(keys.verify(token, { typ: TYP, issuer: 'http://localhost:3000', audience: 'http://localhost:3000' })).resolves.toHaveProperty('sub', 'user_1');

    const list = await keys.list();
    expect(list.map((k) => [k.kid, k.state])).toEqual([[old, 'retired'], [added.kid, 'active']]);
    expect(list[0]!.retiredAt).toBe(added.activatesAt);
    expect(list[0]!.publishedUntil).toBe(new Date(Date.parse(added.activatesAt) + MAX_SIGNED_LIFETIME_MS).toISOString());
    expect(list[1]!.publishedUntil).toBeNull();
    // The retired key is still published: tokens it signed are still alive.
    const published = ((await gh.request('GET', '/.well-known/jwks.json')).body as { keys: JWK[] }).keys.map((k) => k.kid);
    expect(published.sort()).toEqual([old, added.kid].sort());
  });

  it('a token signed by a retired-and-removed key is refused; the JWKS drops the key at its published-until time, before its row is deleted', async () => {
    const gh = await instance();
    const keys = gh.services.signingKeys;
    const old = await keys.currentKid();
    // A token that would otherwise still be valid (a day long): only the key's removal refuses it.
    const token = await keys.sign(claims(gh, 24 * 60 * MINUTE), TYP);
    const added = await keys.rotate();
    gh.clock.advance(DELAY);
    expect(await keys.currentKid()).toBe(added.kid);
    const publishedUntil = Date.parse((await keys.list()).find((k) => k.kid === old)!.publishedUntil!);

    const jwksKids = async () => ((await gh.request('GET', '/.well-known/jwks.json')).body as { keys: JWK[] }).keys.map((k) => k.kid);
    gh.clock.set(new Date(publishedUntil - 10_000));
    expect(await jwksKids()).toContain(old); // the ring is read now and cached
    await expect(keys.verify(token, { typ: TYP })).resolves.toHaveProperty('sub', 'user_1');

    // Past its published time, within the cache TTL: not listed, although its row is still there.
    gh.clock.advance(20_000);
    expect(await jwksKids()).toEqual([added.kid]);
    expect((await rows(gh)).map((r) => r.id)).toContain(old);
    await expect(keys.verify(token, { typ: TYP })).rejects.toThrow(SigningKeyError);
    await expect(keys.verify(token, { typ: TYP })).rejects.toThrow(/not published/);

    // A long-running instance deletes it by itself when it reads the ring (no CLI involved).
    gh.clock.advance(CACHE_TTL_MS);
    expect(await jwksKids()).toEqual([added.kid]);
    expect((await rows(gh)).map((r) => r.id)).toEqual([added.kid]);
    expect((await keys.list()).map((k) => k.kid)).toEqual([added.kid]);
    await expect(keys.verify(token, { typ: TYP })).rejects.toThrow(/not published/);
  });

  it('a running instance deletes expired keys when it reads the ring, at most every PRUNE_INTERVAL_MS', async () => {
    const gh = await instance();
    const keys = gh.services.signingKeys;
    const t0 = gh.clock.now().getTime();
    const at = (ms: number) => {
      gh.clock.set(new Date(t0 + ms));
      keys.refresh();
    };
    const k1 = await keys.currentKid();
    const k2 = (await keys.rotate()).kid; // signs at +10m: k1 retired then, published until +75m
    at(2 * MINUTE);
    const k3 = (await keys.rotate()).kid; // signs at +12m: k2 retired then, published until +77m
    at(12 * MINUTE);
    expect(await keys.currentKid()).toBe(k3);

    at(DELAY + MAX_SIGNED_LIFETIME_MS + 1000);
    expect((await keys.jwks()).keys.map((k) => k.kid)).toEqual([k2, k3]);
    expect((await rows(gh)).map((r) => r.id)).toEqual([k2, k3]); // k1 deleted by that read
    // k2's time is over two minutes later: unpublished at once, deleted only PRUNE_INTERVAL_MS after the last delete.
    at(2 * MINUTE + DELAY + MAX_SIGNED_LIFETIME_MS + 1000);
    expect((await keys.jwks()).keys.map((k) => k.kid)).toEqual([k3]);
    expect((await rows(gh)).map((r) => r.id)).toEqual([k2, k3]);
    at(DELAY + MAX_SIGNED_LIFETIME_MS + 1000 + PRUNE_INTERVAL_MS);
    expect((await keys.jwks()).keys.map((k) => k.kid)).toEqual([k3]);
    expect((await rows(gh)).map((r) => r.id)).toEqual([k3]);
    expect(k1).not.toBe(k2);
  });

  it('rotate() and prune() delete expired keys at once and report them', async () => {
    const gh = await instance();
    const keys = gh.services.signingKeys;
    const k1 = await keys.currentKid();
    const k2 = (await keys.rotate()).kid;
    gh.clock.advance(DELAY + MAX_SIGNED_LIFETIME_MS + 1);
    const k3 = await keys.rotate(); // no read of the ring happened since k1 expired
    expect(k3.removed).toEqual([k1]);
    expect((await rows(gh)).map((r) => r.id)).toEqual([k2, k3.kid]);
    expect(await keys.prune()).toEqual([]);
    gh.clock.advance(DELAY + MAX_SIGNED_LIFETIME_MS + 1);
    expect(await keys.prune()).toEqual([k2]);
    expect((await keys.list()).map((k) => [k.kid, k.state])).toEqual([[k3.kid, 'active']]);
  });

  describe('attacks on verification', () => {
    it('alg none is refused', async () => {
      const gh = await instance();
      const keys = gh.services.signingKeys;
      const kid = await keys.currentKid();
      const body = claims(gh);
      await expect(keys.verify(await keys.sign(body, TYP), { typ: TYP })).resolves.toMatchObject(body); // the control
      const none = `${b64({ alg: 'none', kid, typ: TYP })}.${b64(body)}.`;
      await expect(keys.verify(none, { typ: TYP })).rejects.toMatchObject({ code: 'ERR_JOSE_ALG_NOT_ALLOWED' });
      const noneSigned = `${b64({ alg: 'none', kid, typ: TYP })}.${b64(body)}.${randomBytes(64).toString('base64url')}`;
      await expect(keys.verify(noneSigned, { typ: TYP })).rejects.toMatchObject({ code: 'ERR_JOSE_ALG_NOT_ALLOWED' });
    });

    it('an HS256 token using the public key as the secret is refused (algorithm confusion)', async () => {
      const gh = await instance();
      const keys = gh.services.signingKeys;
      const { keys: [pub] } = await keys.jwks();
      const spki = await exportSPKI(await importJWK(pub!, 'ES256', { extractable: true }) as CryptoKey);
      for (const secret of [JSON.stringify(pub), spki, pub!.x!]) {
        const forged = await new SignJWT(claims(gh)).setProtectedHeader({ alg: 'HS256', kid: pub!.kid!, typ: TYP }).sign(new TextEncoder().encode(secret));
        await expect(keys.verify(forged, { typ: TYP })).rejects.toMatchObject({ code: 'ERR_JOSE_ALG_NOT_ALLOWED' });
      }
    });

    it('a token with an unknown kid is refused, and so is one signed by another key under our kid', async () => {
      const gh = await instance();
      const keys = gh.services.signingKeys;
      const kid = await keys.currentKid();
      const attacker = await generateKeyPair('ES256');
      const unknown = await new SignJWT(claims(gh)).setProtectedHeader({ alg: 'ES256', kid: 'not-a-gatehouse-key', typ: TYP }).sign(attacker.privateKey);
      await expect(keys.verify(unknown, { typ: TYP })).rejects.toThrow(SigningKeyError);
      const underOurKid = await new SignJWT(claims(gh)).setProtectedHeader({ alg: 'ES256', kid, typ: TYP }).sign(attacker.privateKey);
      await expect(keys.verify(underOurKid, { typ: TYP })).rejects.toMatchObject({ code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
    });

    it('a token without kid is refused, even with a valid signature of the current key', async () => {
      const gh = await instance();
      const keys = gh.services.signingKeys;
      const { keys: [priv] } = await keys.providerKeys();
      const noKid = await new SignJWT(claims(gh)).setProtectedHeader({ alg: 'ES256', typ: TYP }).sign(await importJWK(priv!, 'ES256'));
      await expect(keys.verify(noKid, { typ: TYP })).rejects.toThrow(/no kid/);
      const withKid = await new SignJWT(claims(gh)).setProtectedHeader({ alg: 'ES256', kid: priv!.kid!, typ: TYP }).sign(await importJWK(priv!, 'ES256'));
      await expect(keys.verify(withKid, { typ: TYP })).resolves.toHaveProperty('sub', 'user_1'); // the control
    });

    it('wrong typ is refused', async () => {
      const gh = await instance();
      const keys = gh.services.signingKeys;
      const logoutToken = await keys.sign(claims(gh), 'logout+jwt');
      await expect(keys.verify(logoutToken, { typ: 'logout+jwt' })).resolves.toHaveProperty('sub', 'user_1');
      await expect(keys.verify(logoutToken, { typ: TYP })).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'typ' });
      // A token without typ is refused too.
      const { keys: [priv] } = await keys.providerKeys();
      const noTyp = await new SignJWT(claims(gh)).setProtectedHeader({ alg: 'ES256', kid: priv!.kid! }).sign(await importJWK(priv!, 'ES256'));
      await expect(keys.verify(noTyp, { typ: TYP })).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'typ' });
    });

    it('an expired token of a published key is refused', async () => {
      const gh = await instance();
      const keys = gh.services.signingKeys;
      const token = await keys.sign(claims(gh, 10 * MINUTE), TYP);
      gh.clock.advance(10 * MINUTE + 1000);
      await expect(keys.verify(token, { typ: TYP })).rejects.toMatchObject({ code: 'ERR_JWT_EXPIRED' });
    });
  });

  describe('several instances on one database', () => {
    it('both publish the same set and sign with the same current key; a rotation on A reaches B after its cache TTL, and B signs with it after the delay', async () => {
      const start = new Date();
      const join = sharedDatabase();
      const a = await join({ clock: fixedClock(start) });
      const b = await join({ clock: fixedClock(start) });
      const [ka, kb] = [a.services.signingKeys, b.services.signingKeys];
      const old = await ka.currentKid();
      expect(await kb.currentKid()).toBe(old);
      const jwksA = (await a.request('GET', '/.well-known/jwks.json')).body;
      const jwksB = (await b.request('GET', '/.well-known/jwks.json')).body;
      expect(jwksB).toEqual(jwksA);
      // A token of either instance verifies on the other.
      await expect(kb.verify(await ka.sign(claims(a), TYP), { typ: TYP })).resolves.toHaveProperty('sub', 'user_1');
      await expect(ka.verify(await kb.sign(claims(b), TYP), { typ: TYP })).resolves.toHaveProperty('sub', 'user_1');

      const added = await ka.rotate();
      expect((await ka.jwks()).keys.map((k) => k.kid)).toContain(added.kid);
      // B still has its copy of the ring …
      b.clock.advance(CACHE_TTL_MS - 1);
      expect((await kb.jwks()).keys.map((k) => k.kid)).toEqual([old]);
      // … and publishes the new key once its cache is older than the TTL.
      b.clock.advance(1);
      expect((await kb.jwks()).keys.map((k) => k.kid).sort()).toEqual([old, added.kid].sort());
      expect(await kb.currentKid()).toBe(old);

      a.clock.advance(DELAY);
      b.clock.advance(DELAY - CACHE_TTL_MS);
      expect(await ka.currentKid()).toBe(added.kid);
      expect(await kb.currentKid()).toBe(added.kid);
      const fromB = await kb.sign(claims(b), TYP);
      expect(kidIn(fromB)).toBe(added.kid);
      await expect(ka.verify(fromB, { typ: TYP })).resolves.toHaveProperty('sub', 'user_1');
      expect((await b.request('GET', '/.well-known/jwks.json')).body).toEqual((await a.request('GET', '/.well-known/jwks.json')).body);
    });

    it('concurrent first start of several instances yields one key that all of them sign with', async () => {
      const join = sharedDatabase();
      const start = new Date();
      const instances = [await join({ clock: fixedClock(start) }), await join({ clock: fixedClock(start) }), await join({ clock: fixedClock(start) })];
      // Every instance asks for its ring at once (several requests each), on an empty table.
      const kids = await Promise.all(instances.flatMap((gh) => [gh.services.signingKeys.currentKid(), gh.services.signingKeys.jwks().then((j) => j.keys[0]!.kid!), gh.services.signingKeys.currentKid()]));
      expect(new Set(kids).size).toBe(1);
      expect(await rows(instances[0]!)).toHaveLength(1);
      const token = await instances[1]!.services.signingKeys.sign(claims(instances[1]!), TYP);
      for (const gh of instances) await expect(gh.services.signingKeys.verify(token, { typ: TYP })).resolves.toHaveProperty('sub', 'user_1');
    });

    it('rotate on an empty ring racing an instance first start still leaves one ring everybody agrees on', async () => {
      const join = sharedDatabase();
      const start = new Date();
      const a = await join({ clock: fixedClock(start) });
      const b = await join({ clock: fixedClock(start) });
      const [first, rotated] = await Promise.all([a.services.signingKeys.currentKid(), b.services.signingKeys.rotate()]);
      const stored = await rows(a);
      // Exactly one key signs now; a second one (if rotate lost the race) waits for the delay.
      const active = (await a.services.signingKeys.list()).filter((k) => k.state === 'active');
      expect(active).toHaveLength(1);
      expect(stored.length).toBeLessThanOrEqual(2);
      b.services.signingKeys.refresh();
      a.services.signingKeys.refresh();
      expect(await a.services.signingKeys.currentKid()).toBe(active[0]!.kid);
      expect(await b.services.signingKeys.currentKid()).toBe(active[0]!.kid);
      expect(first).toBe(active[0]!.kid);
      if (stored.length === 2) expect(rotated.state).toBe('pending');
    });

    it('secrets rotate re-seals signing keys under the new secret key; they still sign and verify with only the new key', async () => {
      const oldSpec = testKeySpec('old');
      const newSpec = testKeySpec('new');
      const start = new Date();
      const join = sharedDatabase(oldSpec);
      const a = await join({ clock: fixedClock(start) });
      const first = await a.services.signingKeys.currentKid();
      const token = await a.services.signingKeys.sign(claims(a), TYP);
      const pending = await a.services.signingKeys.rotate();
      expect((await rows(a)).map((r) => a.deps.keyring.kidOf(r.private_jwk_enc))).toEqual(['old', 'old']);

      // What `gatehouse secrets rotate` runs (test/cli/keys-cli.test.ts runs the real command).
      const both = createKeyRing(parseKeySpec(`${newSpec},${oldSpec}`));
      expect(await a.deps.db.transaction().execute((tx) => resealAll(tx, both))).toEqual({ rewritten: 2, alreadyCurrent: 0 });
      const resealed = await rows(a);
      expect(resealed.map((r) => both.kidOf(r.private_jwk_enc))).toEqual(['new', 'new']);

      // An instance that holds only the new secret key signs with the ring and verifies old tokens.
      const b = await join({ secretKeys: newSpec, clock: fixedClock(start) });
      const kb = b.services.signingKeys;
      expect(await kb.currentKid()).toBe(first);
      await expect(kb.verify(token, { typ: TYP })).resolves.toHaveProperty('sub', 'user_1');
      const fresh = await kb.sign(claims(b), TYP);
      await expect(a.services.signingKeys.verify(fresh, { typ: TYP })).resolves.toHaveProperty('sub', 'user_1');
      expect((await kb.providerKeys()).keys.map((k) => k.kid)).toEqual([first, pending.kid]);
      b.clock.advance(DELAY);
      expect(kidIn(await kb.sign(claims(b), TYP))).toBe(pending.kid);
      // An instance left with only the old secret key can no longer open them.
      const c = await join({ secretKeys: oldSpec, clock: fixedClock(start) });
      await expect(c.services.signingKeys.sign(claims(c), TYP)).rejects.toThrow(KeyRingError);
    });
  });
});
