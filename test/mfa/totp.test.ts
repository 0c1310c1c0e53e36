import { generate } from 'otplib';
import { describe, expect, it } from 'vitest';
import { generateRecoveryCode, hashRecoveryCode, normalizeRecoveryCode } from '../../src/mfa/service.js';
import {
  base32Decode, base32Encode, generateTotpSecret, hotp, matchingSteps, otpauthUrl, timeStep, totpAt, type HmacAlgorithm,
} from '../../src/mfa/totp.js';

// RFC 6238 Appendix B: the seeds are ASCII digits, 20 / 32 / 64 bytes for SHA-1 / SHA-256 / SHA-512.
const SEEDS: Record<HmacAlgorithm, Buffer> = {
  sha1: Buffer.from('12345678901234567890', 'ascii'),
  sha256: Buffer.from('12345678901234567890123456789012', 'ascii'),
  sha512: Buffer.from('1234567890123456789012345678901234567890123456789012345678901234', 'ascii'),
};

const RFC6238_VECTORS: Array<[number, string, HmacAlgorithm]> = [
  [59, '94287082', 'sha1'], [59, '46119246', 'sha256'], [59, '90693936', 'sha512'],
  [1111111109, '07081804', 'sha1'], [1111111109, '68084774', 'sha256'], [1111111109, '25091201', 'sha512'],
  [1111111111, '14050471', 'sha1'], [1111111111, '67062674', 'sha256'], [1111111111, '99943326', 'sha512'],
  [1234567890, '89005924', 'sha1'], [1234567890, '91819424', 'sha256'], [1234567890, '93441116', 'sha512'],
  [2000000000, '69279037', 'sha1'], [2000000000, '90698825', 'sha256'], [2000000000, '38618901', 'sha512'],
  [20000000000, '65353130', 'sha1'], [20000000000, '77737706', 'sha256'], [20000000000, '47863826', 'sha512'],
];

describe('TOTP (RFC 6238) and HOTP (RFC 4226)', () => {
  it.each(RFC6238_VECTORS)('RFC 6238 Appendix B: T=%i gives %s with %s', (seconds, expected, algorithm) => {
    const step = timeStep(new Date(seconds * 1000));
    expect(totpAt(SEEDS[algorithm], step, 8, algorithm)).toBe(expected);
  });

  it('RFC 4226 Appendix D: HOTP values for counters 0–9', () => {
    const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    expect(expected.map((_, i) => hotp(SEEDS.sha1, i))).toEqual(expected);
  });

  it('Base32 (RFC 4648) round-trips and matches the RFC 4648 test vectors', () => {
    const vectors: Array<[string, string]> = [['', ''], ['f', 'MY'], ['fo', 'MZXQ'], ['foo', 'MZXW6'], ['foob', 'MZXW6YQ'], ['fooba', 'MZXW6YTB'], ['foobar', 'MZXW6YTBOI']];
    for (const [plain, encoded] of vectors) {
      expect(base32Encode(Buffer.from(plain))).toBe(encoded);
      expect(base32Decode(encoded).toString()).toBe(plain);
      expect(base32Decode(encoded.toLowerCase() + '===').toString()).toBe(plain);
    }
    expect(() => base32Decode('MZXW1')).toThrow();
    const secret = generateTotpSecret();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(base32Decode(secret)).toHaveLength(20);
    expect(base32Encode(base32Decode(secret))).toBe(secret);
  });

  it('agrees with an independent implementation (otplib) on random secrets and times', async () => {
    for (let i = 0; i < 20; i++) {
      const secret = generateTotpSecret();
      const epoch = Math.floor(Math.random() * 4_000_000_000);
      const ours = totpAt(base32Decode(secret), timeStep(new Date(epoch * 1000)));
      expect(ours).toBe(await generate({ secret, epoch }));
    }
  });

  it('matches a code only within one step either side of now', () => {
    const key = SEEDS.sha1;
    const now = new Date(1_700_000_015_000); // 15 s into a step
    const step = timeStep(now);
    for (const delta of [-1, 0, 1]) expect(matchingSteps(key, totpAt(key, step + delta), now)).toContain(step + delta);
    for (const delta of [-2, 2, -10]) {
      const code = totpAt(key, step + delta);
      const nearby = [-1, 0, 1].map((d) => totpAt(key, step + d));
      if (!nearby.includes(code)) expect(matchingSteps(key, code, now)).toEqual([]);
    }
    expect(matchingSteps(key, '12345', now)).toEqual([]);
    expect(matchingSteps(key, 'abcdef', now)).toEqual([]);
  });

  it('builds the otpauth URI authenticator apps read', () => {
    const url = new URL(otpauthUrl('ada+mfa@example.com', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'));
    expect(url.protocol).toBe('otpauth:');
    expect(url.host).toBe('totp');
    expect(decodeURIComponent(url.pathname)).toBe('/Gatehouse:ada+mfa@example.com');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', issuer: 'Gatehouse', algorithm: 'SHA1', digits: '6', period: '30',
    });
  });

  it('recovery codes carry 80 random bits, are grouped for reading, and hash in their canonical form', () => {
    const codes = new Set(Array.from({ length: 200 }, generateRecoveryCode));
    expect(codes.size).toBe(200);
    for (const code of codes) expect(code).toMatch(/^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
    const code = [...codes][0]!;
    expect(normalizeRecoveryCode(` ${code.toUpperCase().replaceAll('-', ' ')} `)).toBe(code.replaceAll('-', ''));
    expect(hashRecoveryCode(code.toUpperCase())).toBe(hashRecoveryCode(code));
    expect(hashRecoveryCode(code)).toMatch(/^[0-9a-f]{64}$/);
  });
});
