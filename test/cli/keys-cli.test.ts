import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, type JWK } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { fixedClock, HOUR, MINUTE } from '../../src/clock.js';
import { CACHE_TTL_MS, type SigningKeyView } from '../../src/tokens/signing-keys.js';
import { createTestGatehouse, ENGINE, TEST_DATABASE_URL, testKeySpec, type TestGatehouse } from '../helpers/app.js';
import { adminClient } from '../helpers/postgres.js';
import { cliArgs } from '../helpers/cli.js';

/**
 * `gatehouse keys rotate|list` as real processes, on a SQLite file or a fresh PostgreSQL database
 * (TEST_DATABASE_URL), beside an in-process Gatehouse on the same database.
 */

function run(args: string[], env: Record<string, string>) {
  const res = spawnSync(process.execPath, cliArgs(...args), {
    cwd: mkdtempSync(join(tmpdir(), 'gh-keys-cli-')),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', GATEHOUSE_LOG_LEVEL: 'warn', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: res.status, out: res.stdout, err: res.stderr };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A database of its own: a SQLite file, or a new PostgreSQL database (the CLI runs in its default schema). */
async function freshDatabase(): Promise<string> {
  if (!TEST_DATABASE_URL) return `sqlite:${mkdtempSync(join(tmpdir(), 'gh-keys-cli-'))}/gh.db`;
  const name = `gh_keys_${randomBytes(4).toString('hex')}`;
  const admin = await adminClient();
  await admin.query(`create database ${name}`);
  await admin.end();
  cleanups.push(async () => {
    const a = await adminClient();
    await a.query(`drop database if exists ${name} with (force)`);
    await a.end();
  });
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function instanceOn(databaseUrl: string, secretKeys: string, clock = fixedClock(new Date())): Promise<TestGatehouse> {
  const gh = await createTestGatehouse({ databaseUrl, env: { GATEHOUSE_SECRET_KEYS: secretKeys }, clock, ...(TEST_DATABASE_URL ? { schema: 'public' } : {}) });
  cleanups.push(() => gh.destroy());
  return gh;
}

const listJson = (env: Record<string, string>) => {
  const res = run(['keys', 'list', '--json'], env);
  expect(res.err).toBe('');
  expect(res.code).toBe(0);
  return JSON.parse(res.out) as SigningKeyView[];
};
const line = (out: string, name: string) => new RegExp(`^${name}: (\\S+)$`, 'm').exec(out)?.[1];

// Each test runs several CLI processes (tsx compiles the sources in each): slow on a busy machine.
describe(`gatehouse keys on ${ENGINE}`, { timeout: 300_000 }, () => {
  it('keys rotate adds a key (at once on an empty ring, else after the delay) and keys list shows every key', async () => {
    const env = { DATABASE_URL: await freshDatabase(), GATEHOUSE_SECRET_KEYS: testKeySpec() };
    const empty = run(['keys', 'list'], env);
    expect(empty.err).toBe('');
    expect(empty.out).toContain('no signing keys yet');

    const first = run(['keys', 'rotate'], env);
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(first.out).toContain('signs now (the ring was empty)');
    const k1 = line(first.out, 'kid')!;
    expect(k1).toMatch(/^\d{8}-[A-Za-z0-9_-]{8}$/);

    const second = run(['keys', 'rotate'], env);
    expect(second.code).toBe(0);
    const k2 = line(second.out, 'kid')!;
    const activatesAt = line(second.out, 'activatesAt')!;
    expect(second.out).toContain(`published now, signs from ${activatesAt}`);
    expect(second.out).toContain('removed 0 expired key(s)');

    const third = run(['keys', 'rotate', '--json'], { ...env, GATEHOUSE_KEY_ACTIVATION_DELAY: '90s' });
    const k3 = JSON.parse(third.out) as SigningKeyView & { removed: string[] };
    expect(k3).toMatchObject({ state: 'pending', removed: [] });
    expect(Date.parse(k3.activatesAt) - Date.parse(k3.createdAt)).toBe(90_000);

    const keys = listJson(env);
    expect(keys.map((k) => [k.kid, k.state])).toEqual([[k1, 'active'], [k3.kid, 'pending'], [k2, 'pending']]);
    expect(keys.find((k) => k.kid === k2)!.activatesAt).toBe(activatesAt);
    expect(Date.parse(activatesAt) - Date.parse(keys.find((k) => k.kid === k2)!.createdAt)).toBe(10 * MINUTE); // the default delay

    const text = run(['keys', 'list'], env);
    expect(text.out.split('\n')[0]).toMatch(/^kid\s+state\s+createdAt\s+activatesAt\s+publishedUntil$/);
    expect(text.out).toMatch(new RegExp(`^${k2}\\s+pending\\s+\\S+\\s+${activatesAt.replaceAll('.', '\\.')}\\s+-$`, 'm'));

    for (const bad of [['keys'], ['keys', 'remove'], ['keys', 'rotate', '--force']]) {
      const res = run(bad, env);
      expect(res.code, bad.join(' ')).toBe(2);
      expect(res.err).toContain('Usage: gatehouse keys rotate');
    }
    expect(listJson(env)).toHaveLength(3); // the refused commands changed nothing
    expect(run(['help'], env).out).toMatch(/keys rotate .*\n\s+keys list /);
  });

  it('a running instance publishes a key rotated by the CLI after its cache TTL and signs with it after the delay', async () => {
    const secretKeys = testKeySpec();
    const databaseUrl = await freshDatabase();
    const gh = await instanceOn(databaseUrl, secretKeys);
    const keys = gh.services.signingKeys;
    const old = await keys.currentKid();
    const inFlight = await keys.sign({ sub: 'user_1', exp: Math.floor(gh.clock.now().getTime() / 1000) + 3600 }, 'at+jwt');

    const res = run(['keys', 'rotate'], { DATABASE_URL: databaseUrl, GATEHOUSE_SECRET_KEYS: secretKeys });
    expect(res.err).toBe('');
    const added = line(res.out, 'kid')!;
    const jwksKids = async () => ((await gh.request('GET', '/.well-known/jwks.json')).body as { keys: JWK[] }).keys.map((k) => k.kid);
    expect(await jwksKids()).toEqual([old]); // the instance's copy of the ring is fresh
    gh.clock.advance(CACHE_TTL_MS);
    expect((await jwksKids()).sort()).toEqual([old, added].sort());
    expect(await keys.currentKid()).toBe(old);

    gh.clock.set(new Date(Date.parse(line(res.out, 'activatesAt')!)));
    expect(await keys.currentKid()).toBe(added);
    expect(decodeProtectedHeader(await keys.sign({ sub: 'user_1' }, 'at+jwt')).kid).toBe(added);
    await expect(keys.verify(inFlight, { typ: 'at+jwt' })).resolves.toHaveProperty('sub', 'user_1');
  });

  it('keys rotate removes keys whose published time is over; keys list marks them before that', async () => {
    const secretKeys = testKeySpec();
    const databaseUrl = await freshDatabase();
    const env = { DATABASE_URL: databaseUrl, GATEHOUSE_SECRET_KEYS: secretKeys };
    // An instance whose clock is three hours behind made its ring then: k1 was retired at -2h50m.
    const gh = await instanceOn(databaseUrl, secretKeys, fixedClock(new Date(Date.now() - 3 * HOUR)));
    const k1 = await gh.services.signingKeys.currentKid();
    const k2 = (await gh.services.signingKeys.rotate()).kid;

    const before = listJson(env);
    expect(before.map((k) => [k.kid, k.state])).toEqual([[k1, 'retired'], [k2, 'active']]);
    expect(Date.parse(before[0]!.publishedUntil!)).toBeLessThan(Date.now());
    expect(run(['keys', 'list'], env).out).toMatch(new RegExp(`^${k1}\\s+retired\\s.*\\(expired\\)$`, 'm'));

    const res = run(['keys', 'rotate'], env);
    expect(res.err).toBe('');
    expect(res.out).toContain(`removed 1 expired key(s): ${k1}`);
    const k3 = line(res.out, 'kid')!;
    expect(listJson(env).map((k) => [k.kid, k.state])).toEqual([[k2, 'active'], [k3, 'pending']]);
  });

  it('secrets rotate (real process) re-seals the signing keys: an instance with only the new secret key signs and verifies with them', async () => {
    const oldSpec = testKeySpec('old');
    const newSpec = testKeySpec('new');
    const databaseUrl = await freshDatabase();
    const a = await instanceOn(databaseUrl, oldSpec);
    const first = await a.services.signingKeys.currentKid();
    const token = await a.services.signingKeys.sign({ sub: 'user_1', exp: Math.floor(a.clock.now().getTime() / 1000) + 600 }, 'at+jwt');
    const second = line(run(['keys', 'rotate'], { DATABASE_URL: databaseUrl, GATEHOUSE_SECRET_KEYS: oldSpec }).out, 'kid')!;

    const res = run(['secrets', 'rotate'], { DATABASE_URL: databaseUrl, GATEHOUSE_SECRET_KEYS: `${newSpec},${oldSpec}` });
    expect(res.err).toBe('');
    expect(res.out).toContain('re-encrypted 2 secret(s) under key "new"; 0 already current');
    const sealed = await a.deps.db.selectFrom('signing_keys').select(['id', 'private_jwk_enc']).execute();
    expect(sealed.map((r) => a.deps.keyring.kidOf(r.private_jwk_enc))).toEqual(['new', 'new']);

    const b = await instanceOn(databaseUrl, newSpec);
    expect(await b.services.signingKeys.currentKid()).toBe(first);
    await expect(b.services.signingKeys.verify(token, { typ: 'at+jwt' })).resolves.toHaveProperty('sub', 'user_1');
    const fresh = await b.services.signingKeys.sign({ sub: 'user_2', exp: Math.floor(b.clock.now().getTime() / 1000) + 600 }, 'at+jwt');
    await expect(a.services.signingKeys.verify(fresh, { typ: 'at+jwt' })).resolves.toHaveProperty('sub', 'user_2');
    expect((await b.services.signingKeys.providerKeys()).keys.map((k) => k.kid)).toEqual([first, second]);
    expect(run(['keys', 'list'], { DATABASE_URL: databaseUrl, GATEHOUSE_SECRET_KEYS: newSpec }).code).toBe(0);
  });
});
