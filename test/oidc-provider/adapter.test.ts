import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MINUTE } from '../../src/clock.js';
import { sha256 } from '../../src/crypto/tokens.js';
import { createAdapterFactory, PURGE_INTERVAL_MS } from '../../src/oidc-provider/adapter.js';
import { loadOidcProvider } from '../../src/oidc-provider/load.js';
import { createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';

/**
 * The provider's storage (src/oidc-provider/adapter.ts) on its own: what a database reader sees,
 * and the rules every token read passes through.
 */
let t: TestGatehouse;
let user: TestUser;
let sessionId: string;
let reused: string[];
let adapter: ReturnType<typeof createAdapterFactory>;

beforeAll(async () => {
  t = await createTestGatehouse();
  user = await t.signUp('stored@example.com');
  sessionId = (await t.request('GET', '/api/auth/session', { as: user })).body.data.session.id;
  reused = [];
  const oidc = await loadOidcProvider(t.deps.logger);
  adapter = createAdapterFactory({
    oidc,
    db: t.deps.db,
    clock: t.clock,
    clients: { findProviderClient: async () => undefined },
    isSessionLive: async (id) => (await t.services.sessions.authenticateById(id)) !== null,
    organizationOf: async () => null,
    onRefreshTokenReuse: async (sid) => void reused.push(sid),
  });
});
afterAll(async () => t?.destroy());

const row = (model: string, id: string) => t.deps.db.selectFrom('oidc_records').selectAll().where('model', '=', model).where('id', '=', sha256(id)).executeTakeFirst();

describe('the OpenID Provider adapter', () => {
  it('stores a token only as the SHA-256 of its id, and not inside the payload (a database reader cannot replay it)', async () => {
    const token = 'raw-refresh-token-value-0123456789abcdef';
    await adapter('RefreshToken').upsert(token, { jti: token, kind: 'RefreshToken', sid: sessionId, accountId: user.id, grantId: 'g1', exp: 9_999_999_999 }, 600);
    const stored = await row('RefreshToken', token);
    expect(stored).toBeDefined();
    expect(stored!.id).toBe(sha256(token));
    expect(stored!.payload).not.toContain(token);
    expect(stored!.session_id).toBe(sessionId);
    expect((await adapter('RefreshToken').find(token))?.jti).toBe(token);
  });

  it('a token of an ended Gatehouse session is never found', async () => {
    const token = 'access-token-of-an-ending-session';
    await adapter('AccessToken').upsert(token, { jti: token, kind: 'AccessToken', sid: sessionId, accountId: user.id, grantId: 'g1' }, 600);
    expect(await adapter('AccessToken').find(token)).toBeDefined();
    const other = await t.signUp('ending@example.com');
    const otherSession = (await t.request('GET', '/api/auth/session', { as: other })).body.data.session.id;
    await adapter('AccessToken').upsert('t2', { jti: 't2', kind: 'AccessToken', sid: otherSession, accountId: other.id }, 600);
    await t.request('POST', '/api/auth/sign-out', { as: other });
    expect(await adapter('AccessToken').find('t2')).toBeUndefined();
  });

  it('a token without a Gatehouse session (no sid, or a made-up one) is never found', async () => {
    await adapter('AccessToken').upsert('nosid', { jti: 'nosid', kind: 'AccessToken', accountId: user.id }, 600);
    await adapter('AccessToken').upsert('fakesid', { jti: 'fakesid', kind: 'AccessToken', sid: 'not-a-session', accountId: user.id }, 600);
    expect(await adapter('AccessToken').find('nosid')).toBeUndefined();
    expect(await adapter('AccessToken').find('fakesid')).toBeUndefined();
  });

  it('an authorization code is consumed once; the second consume throws invalid_grant and revokes its grant', async () => {
    await adapter('AuthorizationCode').upsert('code-1', { jti: 'code-1', kind: 'AuthorizationCode', sid: sessionId, accountId: user.id, grantId: 'grant-c' }, 60);
    await adapter('AccessToken').upsert('at-of-grant-c', { jti: 'at-of-grant-c', kind: 'AccessToken', sid: sessionId, accountId: user.id, grantId: 'grant-c' }, 600);
    const results = await Promise.allSettled([adapter('AuthorizationCode').consume('code-1'), adapter('AuthorizationCode').consume('code-1')]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ error: 'invalid_grant' });
    expect(await adapter('AccessToken').find('at-of-grant-c')).toBeUndefined();
  });

  it('an expired record is not found, and expired records are purged on a later write', async () => {
    await adapter('Interaction').upsert('short-lived', { jti: 'short-lived', kind: 'Interaction' }, 60);
    t.clock.advance(2 * MINUTE);
    expect(await adapter('Interaction').find('short-lived')).toBeUndefined();
    expect(await row('Interaction', 'short-lived')).toBeDefined();
    t.clock.advance(PURGE_INTERVAL_MS);
    await adapter('Interaction').upsert('another', { jti: 'another', kind: 'Interaction' }, 600);
    await new Promise((r) => setTimeout(r, 100));
    expect(await row('Interaction', 'short-lived')).toBeUndefined();
    expect(await row('Interaction', 'another')).toBeDefined();
  });

  it('only codes and tokens carry their grant: revoking a grant leaves an interaction that names it', async () => {
    await adapter('Interaction').upsert('int-1', { jti: 'int-1', kind: 'Interaction', grantId: 'grant-x' }, 600);
    await adapter('RefreshToken').upsert('rt-x', { jti: 'rt-x', kind: 'RefreshToken', sid: sessionId, accountId: user.id, grantId: 'grant-x' }, 600);
    await adapter('RefreshToken').revokeByGrantId('grant-x');
    expect(await adapter('RefreshToken').find('rt-x')).toBeUndefined();
    expect(await adapter('Interaction').find('int-1')).toBeDefined();
  });
});
