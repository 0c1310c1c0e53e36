import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createKeyRing, loadOrCreateKeyFile, parseKeySpec } from '../../src/crypto/keyring.js';
import { ARGON2_OPTIONS, createPasswordHasher } from '../../src/crypto/passwords.js';
import { safeEqual } from '../../src/crypto/tokens.js';
import { testKeySpec } from '../helpers/app.js';

describe('key ring', () => {
  it('encrypts with the first key and decrypts with any key of the ring', () => {
    const old = createKeyRing(parseKeySpec(testKeySpec('old')));
    const sealed = old.encrypt('client-secret-value', 'sso_connections.secret_enc:1');
    expect(sealed).toMatch(/^v1\.old\./);
    expect(sealed).not.toContain('client-secret-value');
    const rotated = createKeyRing([...parseKeySpec(testKeySpec('new')), ...parseKeySpec(`old:${Buffer.from(parseKeySpec(testKeySpec('x'))[0]!.key).toString('base64')}`)]);
    expect(rotated.currentKid).toBe('new');
    // the "old" entry above is a different key with the same id: decryption must fail authentication
    expect(() => rotated.decrypt(sealed, 'sso_connections.secret_enc:1')).toThrow(/authentication/);
  });

  it('decrypts after rotation when the old key stays in the ring', () => {
    const oldSpec = testKeySpec('old');
    const sealed = createKeyRing(parseKeySpec(oldSpec)).encrypt('s3cret', 'ctx');
    const ring = createKeyRing(parseKeySpec(`${testKeySpec('new')},${oldSpec}`));
    expect(ring.decrypt(sealed, 'ctx')).toBe('s3cret');
    expect(ring.kidOf(ring.encrypt('x', 'ctx'))).toBe('new');
  });

  it('refuses a ciphertext moved to another row (context is authenticated)', () => {
    const ring = createKeyRing(parseKeySpec(testKeySpec()));
    const sealed = ring.encrypt('s3cret', 'mfa_factors.secret_enc:A');
    expect(() => ring.decrypt(sealed, 'mfa_factors.secret_enc:B')).toThrow(/authentication/);
  });

  it('refuses a tampered ciphertext and names a missing key', () => {
    const ring = createKeyRing(parseKeySpec(testKeySpec('k1')));
    const sealed = ring.encrypt('s3cret', 'ctx');
    const parts = sealed.split('.');
    const body = Buffer.from(parts[3]!, 'base64url');
    body[0]! ^= 1;
    expect(() => ring.decrypt([parts[0], parts[1], parts[2], body.toString('base64url')].join('.'), 'ctx')).toThrow(/authentication/);
    const other = createKeyRing(parseKeySpec(testKeySpec('k2')));
    expect(() => other.decrypt(sealed, 'ctx')).toThrow(/no key "k1"/);
  });

  it('creates the development key file with mode 0600 and reuses it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-key-'));
    const path = join(dir, 'sub', 'secret.key');
    const first = loadOrCreateKeyFile(path);
    expect(first.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(parseKeySpec(readFileSync(path, 'utf8').trim())).toHaveLength(1);
    const second = loadOrCreateKeyFile(path);
    expect(second).toEqual({ spec: first.spec, created: false });
  });
});

describe('passwords and tokens', () => {
  it('hashes with argon2id at the OWASP minimum parameters (m=19 MiB, t=2, p=1)', async () => {
    const hasher = createPasswordHasher();
    const h = await hasher.hash('a password');
    expect(h).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(ARGON2_OPTIONS).toMatchObject({ memoryCost: 19456, timeCost: 2, parallelism: 1 });
    expect(await hasher.verify(h, 'a password')).toBe(true);
    expect(await hasher.verify(h, 'a passworD')).toBe(false);
    expect(await hasher.verify('garbage', 'a password')).toBe(false);
  });

  it('compares secrets in constant time whatever their lengths', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
  });
});
