import { describe, expect, it } from 'vitest';
import { createConcurrencyLimit, createPasswordHasher, defaultArgon2Concurrency } from '../../src/crypto/passwords.js';

describe('argon2 concurrency', () => {
  it('runs one computation per core by default and leaves a thread of libuv\'s pool free', () => {
    expect(defaultArgon2Concurrency({}, 2)).toBe(2);
    expect(defaultArgon2Concurrency({}, 8)).toBe(3); // the pool has 4 threads unless UV_THREADPOOL_SIZE says otherwise
    expect(defaultArgon2Concurrency({ UV_THREADPOOL_SIZE: '16' }, 8)).toBe(8);
    expect(defaultArgon2Concurrency({ UV_THREADPOOL_SIZE: '1' }, 2)).toBe(1);
    expect(defaultArgon2Concurrency({ UV_THREADPOOL_SIZE: 'lots' }, 1)).toBe(1);
  });

  it('a burst never runs more tasks at once than the limit; the others wait their turn in order', async () => {
    const limit = createConcurrencyLimit(2);
    let inFlight = 0;
    let most = 0;
    const finished: number[] = [];
    const task = (i: number) => limit.run(async () => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      finished.push(i);
      return i * 10;
    });
    const started = Array.from({ length: 7 }, (_, i) => task(i));
    expect(limit.running).toBe(2);
    expect(limit.waiting).toBe(5);
    expect(await Promise.all(started)).toEqual([0, 10, 20, 30, 40, 50, 60]);
    expect(most).toBe(2);
    expect(finished).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect([limit.running, limit.waiting]).toEqual([0, 0]);
  });

  it('a task that fails gives its slot back (a failing verification cannot wedge sign-in)', async () => {
    const limit = createConcurrencyLimit(1);
    await expect(limit.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(limit.run(async () => 'next')).resolves.toBe('next');
    expect(limit.running).toBe(0);
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() => createConcurrencyLimit(0)).toThrow();
    expect(() => createConcurrencyLimit(1.5)).toThrow();
  });

  it('the hasher behind the limit still tells a right password from a wrong one, many at once', async () => {
    const hasher = createPasswordHasher({ memoryCost: 1024, timeCost: 1, concurrency: 1 });
    const hashed = await hasher.hash('right password');
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => hasher.verify(hashed, i % 2 ? 'wrong password' : 'right password')));
    expect(answers).toEqual([true, false, true, false, true, false]);
    expect(await hasher.verifyDummy('anything')).toBe(false);
    expect(await hasher.verify('not a hash', 'right password')).toBe(false);
  });
});
