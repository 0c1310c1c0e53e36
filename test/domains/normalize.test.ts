import { describe, expect, it } from 'vitest';
import { assertClaimable, emailDomain, genericDomainReason, normalizeDomain } from '../../src/domains/normalize.js';
import { AppError } from '../../src/http/errors.js';

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    return e instanceof AppError ? e.code : 'not an AppError';
  }
}

describe('normalizeDomain', () => {
  it('lower-cases, trims, converts IDNA to ASCII and drops one trailing dot', () => {
    expect(normalizeDomain('Bücher.Example.')).toBe('xn--bcher-kva.example');
    expect(normalizeDomain('  EXAMPLE.org ')).toBe('example.org');
    expect(normalizeDomain('ＥＸＡＭＰＬＥ.org')).toBe('example.org'); // full-width letters (IDNA mapping)
    expect(normalizeDomain('xn--bcher-kva.example')).toBe('xn--bcher-kva.example');
    expect(normalizeDomain('a-b.c-d.test')).toBe('a-b.c-d.test');
  });

  it('throws VALIDATION_FAILED on anything that is not a hostname', () => {
    for (const bad of ['', ' ', 'a@b.test', 'http://b.test', 'b.test/x', 'b.test:80', '10.0.0.1', '0x7f.1', '[::1]', '::1', 'a..b', 'a.b..', '_x.b.test', 'a_b.test', '*.b.test', 'a b.test', '%41.test', 'xn--zz.test', '-a.test', 'a-.test', `${'a'.repeat(64)}.test`, `${'a.'.repeat(127)}test`]) {
      expect(codeOf(() => normalizeDomain(bad)), JSON.stringify(bad)).toBe('VALIDATION_FAILED');
    }
  });
});

describe('emailDomain', () => {
  it('is the normalised domain after the last @', () => {
    expect(emailDomain('Ada@Bücher.Example')).toBe('xn--bcher-kva.example');
    expect(emailDomain('"odd@local"@ACME.test')).toBe('acme.test');
  });
  it('throws VALIDATION_FAILED without a domain part', () => {
    for (const bad of ['ada', 'ada@', '@acme.test', 'ada@acme .test']) expect(codeOf(() => emailDomain(bad)), bad).toBe('VALIDATION_FAILED');
  });
});

describe('generic domains', () => {
  it('public suffixes (ICANN and private) and mailbox providers cannot be claimed', () => {
    for (const d of ['com', 'co.uk', 'gov.uk', 'github.io', 's3.amazonaws.com', 'gmail.com', 'outlook.com', 'yahoo.com', 'seznam.cz', 'laposte.net']) {
      expect(genericDomainReason(d), d).not.toBeNull();
      expect(codeOf(() => assertClaimable(d)), d).toBe('GENERIC_DOMAIN');
    }
  });
  it('an organization domain, a name below a private suffix and an unknown TLD can', () => {
    for (const d of ['acme.test', 'acme.github.io', 'eu.acme.co.uk', 'xn--bcher-kva.example']) {
      expect(genericDomainReason(d), d).toBeNull();
      expect(codeOf(() => assertClaimable(d)), d).toBeNull();
    }
  });
  it('a single unknown label is not a domain (400, not 422)', () => {
    expect(codeOf(() => assertClaimable('localhost'))).toBe('VALIDATION_FAILED');
  });
});
