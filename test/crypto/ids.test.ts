import { describe, expect, it } from 'vitest';
import { newId, ULID_PATTERN } from '../../src/ids.js';

describe('ULIDs', () => {
  it('are 26 Crockford base32 characters whose first ten encode the time', () => {
    const id = newId(1_700_000_000_000 + 5_000_000);
    expect(id).toMatch(ULID_PATTERN);
    const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    const ms = [...id.slice(0, 10)].reduce((acc, ch) => acc * 32 + ALPHABET.indexOf(ch), 0);
    expect(ms).toBe(1_700_000_000_000 + 5_000_000);
  });

  it('sort in creation order, also within one millisecond, and never repeat', () => {
    const ids = Array.from({ length: 5000 }, () => newId());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('differ in their random part across milliseconds', () => {
    const a = newId(2_000_000_000_000);
    const b = newId(2_000_000_000_001);
    expect(a.slice(10)).not.toBe(b.slice(10));
  });

  it('predictable ids: every new millisecond draws fresh random bytes, past the end of the random pool too', () => {
    const parts = new Set<string>();
    for (let ms = 0; ms < 2_000; ms++) parts.add(newId(2_100_000_000_000 + ms).slice(10));
    expect(parts.size).toBe(2_000);
  });
});
