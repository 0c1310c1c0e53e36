import { createHmac, randomBytes } from 'node:crypto';
import { safeEqual } from '../crypto/tokens.js';

/**
 * TOTP (RFC 6238) on HOTP (RFC 4226), with node:crypto. The parameters are the ones every
 * authenticator app expects: HMAC-SHA1 (the RFC 6238 default), 6 digits, 30-second steps,
 * a Base32 secret (RFC 4648, no padding). Proven against the RFC 6238 Appendix B vectors in
 * test/mfa/totp.test.ts.
 */
export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
/** Steps either side of now a code is accepted for (clock drift, typing time): ±30 s. */
export const TOTP_WINDOW = 1;
/** 160 bits: the HMAC-SHA1 output size, the length RFC 4226 recommends. */
export const TOTP_SECRET_BYTES = 20;
export const ISSUER = 'Gatehouse';

export type HmacAlgorithm = 'sha1' | 'sha256' | 'sha512';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 Base32, upper case, without padding. */
export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** RFC 4648 Base32 (case-insensitive, padding and spaces ignored). Throws on any other character. */
export function base32Decode(text: string): Buffer {
  const clean = text.replace(/[\s=]/g, '').toUpperCase();
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const idx = ALPHABET.indexOf(ch);
    if (idx < 0) throw new Error('not a Base32 string');
    value = ((value << 5) | idx) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** A new random secret, Base32 (20 bytes → 32 characters). */
export function generateTotpSecret(): string {
  return base32Encode(randomBytes(TOTP_SECRET_BYTES));
}

/** RFC 4226 HOTP: HMAC of the 8-byte big-endian counter, dynamic truncation, `digits` decimal digits. */
export function hotp(key: Uint8Array, counter: number, digits = TOTP_DIGITS, algorithm: HmacAlgorithm = 'sha1'): string {
  if (!Number.isSafeInteger(counter) || counter < 0) throw new RangeError('counter must be a non-negative integer');
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac(algorithm, key).update(msg).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(binary % 10 ** digits).padStart(digits, '0');
}

/** The RFC 6238 time step T = floor((unix seconds − T0) / X), T0 = 0. */
export function timeStep(now: Date, period = TOTP_PERIOD_SECONDS): number {
  return Math.floor(now.getTime() / 1000 / period);
}

/** The TOTP value at a time step. */
export function totpAt(key: Uint8Array, step: number, digits = TOTP_DIGITS, algorithm: HmacAlgorithm = 'sha1'): string {
  return hotp(key, step, digits, algorithm);
}

/**
 * The time steps within ±`window` of `now` whose code equals `code`, lowest first. Every
 * candidate is computed and compared in constant time (no early exit), so the answer's timing
 * says nothing about which step, if any, matched.
 */
export function matchingSteps(key: Uint8Array, code: string, now: Date, window = TOTP_WINDOW): number[] {
  const current = timeStep(now);
  const matches: number[] = [];
  for (let step = current - window; step <= current + window; step++) {
    if (step < 0) continue;
    if (safeEqual(totpAt(key, step), code)) matches.push(step);
  }
  return matches;
}

/** The otpauth:// URI an authenticator app reads from a QR code (Key URI Format). */
export function otpauthUrl(accountName: string, secret: string): string {
  const label = `${encodeURIComponent(ISSUER)}:${encodeURIComponent(accountName)}`;
  const params = new URLSearchParams({
    secret,
    issuer: ISSUER,
    algorithm: 'SHA1',
    digits: String(TOTP_DIGITS),
    period: String(TOTP_PERIOD_SECONDS),
  });
  return `otpauth://totp/${label}?${params.toString()}`;
}
