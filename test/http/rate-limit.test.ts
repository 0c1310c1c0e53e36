import { mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestGatehouse, dropSchema, TEST_DATABASE_URL, type TestGatehouse } from '../helpers/app.js';

const limits = { 'sign-in:account': { points: 3, duration: 600 }, 'sign-in:ip': { points: 5, duration: 600 }, 'sign-up:ip': { points: 2, duration: 3600 } };
const instances: TestGatehouse[] = [];
const schema = TEST_DATABASE_URL ? `rl_${randomBytes(4).toString('hex')}` : undefined;

/** Two Gatehouse instances on one database: SQLite file, or one PostgreSQL schema. */
async function twoInstances() {
  const databaseUrl = TEST_DATABASE_URL ?? `sqlite:${mkdtempSync(join(tmpdir(), 'gh-rl-'))}/shared.db`;
  const a = await createTestGatehouse({ databaseUrl, rateLimits: limits, ...(schema ? { schema } : {}) });
  const b = await createTestGatehouse({ databaseUrl, rateLimits: limits, ...(schema ? { schema } : {}) });
  instances.push(a, b);
  return [a, b] as const;
}
afterAll(async () => {
  for (const i of instances) await i.destroy();
  if (schema) await dropSchema(schema);
});

describe('rate limits shared across instances', () => {
  it('count sign-in attempts per account on every instance and answer 429 with Retry-After', async () => {
    const [a, b] = await twoInstances();
    await a.signUp('target@example.com', 'the real password');
    const attempt = (t: TestGatehouse, ip: string) =>
      t.request('POST', '/api/auth/sign-in/email', { body: { email: 'target@example.com', password: 'wrong password' }, ip });
    expect((await attempt(a, '127.0.0.11')).status).toBe(401);
    expect((await attempt(b, '127.0.0.12')).status).toBe(401);
    expect((await attempt(a, '127.0.0.13')).status).toBe(401);
    const limited = await attempt(b, '127.0.0.14');
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // Even the right password is refused while limited (no oracle).
    const right = await b.request('POST', '/api/auth/sign-in/email', { body: { email: 'target@example.com', password: 'the real password' }, ip: '127.0.0.15' });
    expect(right.status).toBe(429);
  });

  it('count sign-ups per IP on every instance', async () => {
    const [a, b] = await twoInstances();
    const signUp = (t: TestGatehouse, n: number) =>
      t.request('POST', '/api/auth/sign-up/email', { body: { email: `n${n}@example.com`, password: 'long enough pw' }, ip: '127.0.0.99' });
    expect((await signUp(a, 1)).status).toBe(201);
    expect((await signUp(b, 2)).status).toBe(201);
    const third = await signUp(a, 3);
    expect(third.status).toBe(429);
    expect((await a.request('POST', '/api/auth/sign-up/email', { body: { email: 'n4@example.com', password: 'long enough pw' }, ip: '127.0.0.98' })).status).toBe(201);
  });
});
