import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrg, createTestGatehouse, type TestGatehouse } from '../helpers/app.js';

/**
 * The SAML Single Logout service is bounded before any work: per IP (every message costs an
 * inflate, an XML parse and a signature check) and by body size (the POST body is not read past
 * the largest message accepted). An unknown slug or junk still counts.
 */
let t: TestGatehouse;

beforeAll(async () => {
  t = await createTestGatehouse({ rateLimits: { 'saml-slo:ip': { points: 3, duration: 60 } } });
  const owner = await t.signUp('owner@slo-limits.test');
  await createOrg(t, owner, 'SLO limits', 'slo-limits');
});
afterAll(async () => {
  await t?.destroy();
});

describe('SAML Single Logout limits', () => {
  it('counts every message per IP: past the limit 429, on GET and POST alike; another address is not affected', async () => {
    const ip = '127.0.0.31';
    for (let i = 0; i < 3; i++) {
      const res = await t.request('GET', '/api/auth/sso/slo-limits/saml/slo?SAMLRequest=junk', { ip });
      expect(res.status).not.toBe(429);
    }
    const get = await t.request('GET', '/api/auth/sso/slo-limits/saml/slo?SAMLRequest=junk', { ip });
    expect(get.status).toBe(429);
    const post = await t.request('POST', '/api/auth/sso/slo-limits/saml/slo', { ip, rawBody: 'SAMLRequest=junk', headers: { 'content-type': 'application/x-www-form-urlencoded' }, origin: 'https://idp.example' });
    expect(post.status).toBe(429);
    expect((await t.request('GET', '/api/auth/sso/slo-limits/saml/slo?SAMLRequest=junk', { ip: '127.0.0.32' })).status).not.toBe(429);
  });

  it('refuses a POST body larger than the largest Single Logout message (response_too_large)', async () => {
    const res = await t.request('POST', '/api/auth/sso/slo-limits/saml/slo', {
      ip: '127.0.0.33',
      rawBody: `SAMLRequest=${'A'.repeat(200 * 1024)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      origin: 'https://idp.example',
    });
    expect(res.status).toBe(400);
    expect(res.text).toContain('response_too_large');
  });
});
