import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { checkSecretKeySpec } from '../config.js';

/**
 * Key ring for secrets at rest (SPEC §10): AES-256-GCM, every ciphertext names the key that made it.
 * The first key encrypts; every key decrypts. Each ciphertext is bound to a context string
 * (table, column, row id) as additional authenticated data, so a ciphertext copied to another
 * row or column fails to decrypt.
 *
 * Format: `v1.<kid>.<iv base64url>.<ciphertext‖tag base64url>`
 */
export interface KeyRing {
  readonly currentKid: string;
  readonly kids: readonly string[];
  encrypt(plaintext: string, context: string): string;
  decrypt(sealed: string, context: string): string;
  /** The key id a sealed value was made with, or null when it is not a sealed value. */
  kidOf(sealed: string): string | null;
  /**
   * A 32-byte key per secret key, for one purpose (HKDF-SHA256 with `label` as info), current key
   * first: what signs cookies (the OpenID Provider's) is shared by every instance and follows the
   * secret keys' rotation (old keys still verify).
   */
  derive(label: string): Buffer[];
}

export class KeyRingError extends Error {
  override name = 'KeyRingError';
}

export function parseKeySpec(spec: string): Array<{ kid: string; key: Buffer }> {
  const problem = checkSecretKeySpec(spec);
  if (problem) throw new KeyRingError(problem);
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const idx = entry.indexOf(':');
      return { kid: entry.slice(0, idx), key: Buffer.from(entry.slice(idx + 1), 'base64') };
    });
}

export function createKeyRing(keys: Array<{ kid: string; key: Buffer }>): KeyRing {
  const first = keys[0];
  if (!first) throw new KeyRingError('the key ring needs at least one key');
  const byKid = new Map(keys.map((k) => [k.kid, k.key]));
  return {
    currentKid: first.kid,
    kids: keys.map((k) => k.kid),
    encrypt(plaintext, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', first.key, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `v1.${first.kid}.${iv.toString('base64url')}.${body.toString('base64url')}`;
    },
    decrypt(sealed, context) {
      const parts = sealed.split('.');
      if (parts.length !== 4 || parts[0] !== 'v1') throw new KeyRingError('not a sealed value');
      const [, kid, ivText, bodyText] = parts as [string, string, string, string];
      const key = byKid.get(kid);
      if (!key) throw new KeyRingError(`no key "${kid}" in the key ring (was it removed from GATEHOUSE_SECRET_KEYS?)`);
      const iv = Buffer.from(ivText, 'base64url');
      const body = Buffer.from(bodyText, 'base64url');
      if (iv.length !== 12 || body.length < 16) throw new KeyRingError('sealed value is truncated');
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(body.subarray(body.length - 16));
      try {
        return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8');
      } catch {
        throw new KeyRingError('sealed value failed authentication (wrong key, wrong row or tampered)');
      }
    },
    kidOf(sealed) {
      const parts = sealed.split('.');
      return parts.length === 4 && parts[0] === 'v1' ? (parts[1] ?? null) : null;
    },
    derive(label) {
      return keys.map((k) => Buffer.from(hkdfSync('sha256', k.key, Buffer.alloc(0), Buffer.from(`gatehouse:${label}`, 'utf8'), 32)));
    },
  };
}

/**
 * Development key file: created on first start with one random key, mode 0600.
 * Refused in production by config validation (GATEHOUSE_SECRET_KEYS is required there).
 */
export function loadOrCreateKeyFile(path: string): { spec: string; created: boolean } {
  if (existsSync(path)) {
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) chmodSync(path, 0o600);
    return { spec: readFileSync(path, 'utf8').trim(), created: false };
  }
  mkdirSync(dirname(path), { recursive: true });
  const kid = `k${new Date().toISOString().slice(0, 10).replaceAll('-', '')}`;
  const spec = `${kid}:${randomBytes(32).toString('base64')}`;
  writeFileSync(path, spec + '\n', { mode: 0o600, flag: 'wx' });
  return { spec, created: true };
}
