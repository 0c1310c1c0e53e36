import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/crypto/tokens.js';
import { claimTimeStep, findConfirmedFactor } from '../../src/mfa/store.js';
import { createApiKey, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';

const STEP_MS = 30_000;
const VERIFY_LIMIT = 6;

let t: TestGatehouse;
let n = 0;
beforeAll(async () => {
  // Every request of this file comes from one address: the per-IP limit is tested on its own below.
  // Per account and address (the tight limit, SPEC §12); the per-account ceiling is far higher.
  t = await createTestGatehouse({
    rateLimits: {
      'mfa-verify:account-ip': { points: VERIFY_LIMIT, duration: 600 },
      'mfa-verify:account': { points: 3 * VERIFY_LIMIT, duration: 600 },
      'mfa-verify:ip': { points: 10_000, duration: 600 },
    },
  });
  // Start 10 s into a 30-second step, so ±1 step is unambiguous.
  t.clock.set(new Date(Math.floor(Date.now() / STEP_MS) * STEP_MS + 10_000));
});
afterAll(async () => {
  await t.destroy();
});

/** The code an authenticator app (otplib, an independent implementation) shows `steps` steps from now. */
const codeAt = (secret: string, steps = 0) => generate({ secret, epoch: Math.floor(t.clock.now().getTime() / 1000) + steps * 30 });
/** A code that is valid at none of the steps verify accepts now. */
async function wrongCode(secret: string): Promise<string> {
  const near = await Promise.all([-1, 0, 1].map((d) => codeAt(secret, d)));
  return ['000000', '111111', '222222', '333333'].find((c) => !near.includes(c))!;
}
const nextStep = (steps = 1) => t.clock.advance(steps * STEP_MS);

interface Enrolled extends TestUser {
  secret: string;
  recoveryCodes: string[];
}

async function enrolled(name: string): Promise<Enrolled> {
  const user = await t.signUp(`${name}-${++n}@example.com`);
  const enroll = await t.request('POST', '/api/auth/mfa/totp/enroll', { as: user });
  expect(enroll.status).toBe(200);
  const secret: string = enroll.body.data.secret;
  const confirm = await t.request('POST', '/api/auth/mfa/totp/confirm', { as: user, body: { code: await codeAt(secret) } });
  expect(confirm.status).toBe(200);
  // The enrollment code's step is used up: later codes come from later steps.
  nextStep(3);
  return { ...user, secret, recoveryCodes: confirm.body.data.recoveryCodes };
}

/** A fresh password sign-in: for a user with a confirmed factor its session's MFA is pending. */
async function signIn(user: TestUser): Promise<{ cookie: string }> {
  const res = await t.request('POST', '/api/auth/sign-in/email', { body: { email: user.email, password: user.password }, ip: `127.0.2.${++n % 250}` });
  expect(res.status).toBe(200);
  return { cookie: res.cookie! };
}

const verify = (as: { cookie: string }, body: Record<string, unknown>) => t.request('POST', '/api/auth/mfa/verify', { as, body });
const sessionOf = async (as: { cookie: string }) => (await t.request('GET', '/api/auth/session', { as })).body.data.session;
const auditOf = (userId: string) =>
  t.deps.db.selectFrom('audit_events').selectAll().where('actor_user_id', '=', userId).orderBy('id').execute();

describe('TOTP enrollment', () => {
  it('enroll returns a 160-bit Base32 secret and an otpauth URI; the secret is sealed at rest', async () => {
    const user = await t.signUp('enroll@example.com');
    const res = await t.request('POST', '/api/auth/mfa/totp/enroll', { as: user });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const { secret, otpauthUrl } = res.body.data;
    expect(secret).toMatch(/^[A-Z2-7]{32}$/); // 32 Base32 characters = 160 bits
    const url = new URL(otpauthUrl);
    expect(url.protocol).toBe('otpauth:');
    expect(url.host).toBe('totp');
    expect(decodeURIComponent(url.pathname)).toBe('/Gatehouse:enroll@example.com');
    expect(Object.fromEntries(url.searchParams)).toEqual({ secret, issuer: 'Gatehouse', algorithm: 'SHA1', digits: '6', period: '30' });

    const rows = await t.deps.db.selectFrom('mfa_factors').selectAll().where('user_id', '=', user.id).execute();
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row.confirmed_at).toBeNull();
    expect(JSON.stringify(row)).not.toContain(secret);
    expect(row.secret_enc).toMatch(/^v1\./);
    expect(t.deps.keyring.decrypt(row.secret_enc, `mfa_factors.secret_enc:${row.id}`)).toBe(secret);

    const status = await t.request('GET', '/api/auth/mfa', { as: user });
    expect(status.body.data).toEqual({ totp: { enrolled: false, confirmedAt: null, enrollmentPending: true }, recoveryCodesRemaining: 0 });
  });

  it('enrolling again replaces the unconfirmed factor; a code from the old secret no longer confirms', async () => {
    const user = await t.signUp(`re-enroll-${++n}@example.com`);
    const first = (await t.request('POST', '/api/auth/mfa/totp/enroll', { as: user })).body.data.secret;
    const second = (await t.request('POST', '/api/auth/mfa/totp/enroll', { as: user })).body.data.secret;
    expect(second).not.toBe(first);
    const rows = await t.deps.db.selectFrom('mfa_factors').select('id').where('user_id', '=', user.id).execute();
    expect(rows).toHaveLength(1);
    const old = await t.request('POST', '/api/auth/mfa/totp/confirm', { as: user, body: { code: await codeAt(first) } });
    expect(old.status).toBe(400);
    expect(old.body.code).toBe('MFA_CODE_INVALID');
    const ok = await t.request('POST', '/api/auth/mfa/totp/confirm', { as: user, body: { code: await codeAt(second) } });
    expect(ok.status).toBe(200);
  });

  it('confirm enables MFA, returns ten recovery codes once, stores only their SHA-256, and completes the session', async () => {
    const user = await t.signUp(`confirm-${++n}@example.com`);
    const { secret } = (await t.request('POST', '/api/auth/mfa/totp/enroll', { as: user })).body.data;
    expect((await sessionOf(user)).mfa).toBe('none');
    const res = await t.request('POST', '/api/auth/mfa/totp/confirm', { as: user, body: { code: await codeAt(secret) } });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const codes: string[] = res.body.data.recoveryCodes;
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(/^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/);

    const rows = await t.deps.db.selectFrom('recovery_codes').selectAll().where('user_id', '=', user.id).execute();
    expect(rows.map((r) => r.code_hash).sort()).toEqual(codes.map((c) => sha256(c.replaceAll('-', ''))).sort());
    const dump = JSON.stringify(rows);
    for (const c of codes) {
      expect(dump).not.toContain(c);
      expect(dump).not.toContain(c.replaceAll('-', ''));
    }
    expect((await sessionOf(user)).mfa).toBe('complete');
    const status = await t.request('GET', '/api/auth/mfa', { as: user });
    expect(status.body.data).toMatchObject({ totp: { enrolled: true, enrollmentPending: false }, recoveryCodesRemaining: 10 });
    expect(status.body.data.totp.confirmedAt).toBe(t.clock.now().toISOString());
    expect(status.text).not.toContain(codes[0]);

    // A confirmed factor cannot be replaced or confirmed again without disabling it first.
    const again = await t.request('POST', '/api/auth/mfa/totp/enroll', { as: user });
    expect(again.status).toBe(409);
    expect(again.body.message).toMatch(/disable it first/);
    expect((await t.request('POST', '/api/auth/mfa/totp/confirm', { as: user, body: { code: await codeAt(secret, 1) } })).status).toBe(409);
  });

  it('confirm refuses a wrong code with MFA_CODE_INVALID and changes nothing', async () => {
    const user = await t.signUp(`wrong-confirm-${++n}@example.com`);
    const { secret } = (await t.request('POST', '/api/auth/mfa/totp/enroll', { as: user })).body.data;
    const right = await codeAt(secret);
    const wrong = right === '000000' ? '000001' : '000000';
    const res = await t.request('POST', '/api/auth/mfa/totp/confirm', { as: user, body: { code: wrong } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('MFA_CODE_INVALID');
    expect(await t.deps.db.selectFrom('recovery_codes').select('id').where('user_id', '=', user.id).execute()).toHaveLength(0);
    expect((await t.deps.db.selectFrom('mfa_factors').select('confirmed_at').where('user_id', '=', user.id).executeTakeFirstOrThrow()).confirmed_at).toBeNull();
    expect((await sessionOf(user)).mfa).toBe('none');
    const malformed = await t.request('POST', '/api/auth/mfa/totp/confirm', { as: user, body: { code: '12ab56' } });
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe('VALIDATION_FAILED');
  });

  it('confirm without an enrollment in progress is a conflict', async () => {
    const user = await t.signUp(`no-enroll-${++n}@example.com`);
    const res = await t.request('POST', '/api/auth/mfa/totp/confirm', { as: user, body: { code: '123456' } });
    expect(res.status).toBe(409);
  });
});

describe('MFA at sign-in', () => {
  it('a password sign-in of an enrolled user is MFA-pending and reaches only the MFA endpoints until verify', async () => {
    const user = await enrolled('pending');
    const s = await signIn(user);
    expect((await sessionOf(s)).mfa).toBe('pending');
    expect((await t.request('GET', '/api/auth/mfa', { as: s })).status).toBe(200);
    const blocked = await t.request('GET', '/api/user/me', { as: s });
    expect(blocked.status).toBe(403);
    expect(blocked.body.code).toBe('MFA_REQUIRED');
    const res = await verify(s, { code: await codeAt(user.secret) });
    expect(res.status).toBe(200);
    expect(res.body.data.session).toMatchObject({ mfa: 'complete', authMethod: 'password' });
    expect(res.body.data.user).toMatchObject({ id: user.id, email: user.email });
    expect((await sessionOf(s)).mfa).toBe('complete');
    expect((await t.request('GET', '/api/user/me', { as: s })).status).toBe(200);
  });

  it('verify accepts the codes of the previous, current and next step', async () => {
    const user = await enrolled('window');
    for (const delta of [-1, 0, 1]) {
      const s = await signIn(user);
      const res = await verify(s, { code: await codeAt(user.secret, delta) });
      expect(res.status, `step ${delta}`).toBe(200);
      expect((await sessionOf(s)).mfa).toBe('complete');
    }
  });

  it('verify refuses codes two steps away (−2, +2) and accepts a spaced "123 456" form', async () => {
    const user = await enrolled('far');
    const s = await signIn(user);
    const near = await Promise.all([-1, 0, 1].map((d) => codeAt(user.secret, d)));
    for (const delta of [-2, 2]) {
      const code = await codeAt(user.secret, delta);
      if (near.includes(code)) continue; // a 1-in-10^6 collision with a valid code
      const res = await verify(s, { code });
      expect(res.status, `step ${delta}`).toBe(400);
      expect(res.body.code).toBe('MFA_CODE_INVALID');
      expect(res.body.details).toEqual({ reason: 'invalid' });
    }
    expect((await sessionOf(s)).mfa).toBe('pending');
    const code = await codeAt(user.secret);
    expect((await verify(s, { code: `${code.slice(0, 3)} ${code.slice(3)}` })).status).toBe(200);
  });

  it('rejects a replayed TOTP code (the same code twice; an older step after a newer one)', async () => {
    const user = await enrolled('replay');
    const code = await codeAt(user.secret);
    const a = await signIn(user);
    expect((await verify(a, { code })).status).toBe(200);
    const b = await signIn(user);
    const replay = await verify(b, { code });
    expect(replay.status).toBe(400);
    expect(replay.body).toMatchObject({ code: 'MFA_CODE_INVALID', details: { reason: 'replayed' } });
    expect((await sessionOf(b)).mfa).toBe('pending');

    // +1 step accepted, then the never-used −1 step (older) is refused.
    expect((await verify(b, { code: await codeAt(user.secret, 1) })).status).toBe(200);
    const c = await signIn(user);
    const older = await verify(c, { code: await codeAt(user.secret, -1) });
    expect(older.status).toBe(400);
    expect(older.body.details).toEqual({ reason: 'replayed' });
  });

  it('rejects the enrollment code replayed at verify', async () => {
    const user = await t.signUp(`enroll-replay-${++n}@example.com`);
    const { secret } = (await t.request('POST', '/api/auth/mfa/totp/enroll', { as: user })).body.data;
    const code = await codeAt(secret);
    expect((await t.request('POST', '/api/auth/mfa/totp/confirm', { as: user, body: { code } })).status).toBe(200);
    const s = await signIn(user);
    const res = await verify(s, { code });
    expect(res.status).toBe(400);
    expect(res.body.details).toEqual({ reason: 'replayed' });
  });

  it('rejects concurrent submissions of one TOTP code: exactly one succeeds', async () => {
    const user = await enrolled('race');
    const sessions = await Promise.all(Array.from({ length: 4 }, () => signIn(user)));
    const code = await codeAt(user.secret);
    const results = await Promise.all(sessions.map((s) => verify(s, { code })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 400, 400, 400]);
    const states = await Promise.all(sessions.map(sessionOf));
    expect(states.filter((s) => s.mfa === 'complete')).toHaveLength(1);
  });

  it('the time-step claim is atomic in the database: of concurrent claims of one step exactly one wins', async () => {
    const user = await enrolled('claim');
    const factor = await findConfirmedFactor(t.deps.db, user.id);
    const step = Math.floor(t.clock.now().getTime() / STEP_MS) + 100;
    const wins = await Promise.all(Array.from({ length: 8 }, () => claimTimeStep(t.deps.db, factor!.id, step)));
    expect(wins.filter(Boolean)).toHaveLength(1);
    expect(await claimTimeStep(t.deps.db, factor!.id, step - 1)).toBe(false);
    expect(await claimTimeStep(t.deps.db, factor!.id, step + 1)).toBe(true);
  });

  it('a recovery code completes MFA once; rejects a reused recovery code', async () => {
    const user = await enrolled('recovery');
    const [first, second] = user.recoveryCodes as [string, string];
    const a = await signIn(user);
    const ok = await verify(a, { recoveryCode: first });
    expect(ok.status).toBe(200);
    expect(ok.body.data.session.mfa).toBe('complete');
    const b = await signIn(user);
    const reused = await verify(b, { recoveryCode: first });
    expect(reused.status).toBe(400);
    expect(reused.body.code).toBe('MFA_CODE_INVALID');
    expect((await sessionOf(b)).mfa).toBe('pending');
    // Typed in upper case with spaces instead of hyphens: the same code.
    expect((await verify(b, { recoveryCode: second.toUpperCase().replaceAll('-', ' ') })).status).toBe(200);
    expect((await t.request('GET', '/api/auth/mfa', { as: b })).body.data.recoveryCodesRemaining).toBe(8);
    const used = await t.deps.db.selectFrom('recovery_codes').select('used_at').where('user_id', '=', user.id).where('used_at', 'is not', null).execute();
    expect(used).toHaveLength(2);
  });

  it('rejects concurrent use of one recovery code: exactly one succeeds', async () => {
    const user = await enrolled('recovery-race');
    const sessions = await Promise.all(Array.from({ length: 4 }, () => signIn(user)));
    const results = await Promise.all(sessions.map((s) => verify(s, { recoveryCode: user.recoveryCodes[3] })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 400, 400, 400]);
  });

  it('refuses a wrong code, an unknown recovery code, and a body with both or neither', async () => {
    const user = await enrolled('wrong');
    const s = await signIn(user);
    const wrong = await wrongCode(user.secret);
    const res = await verify(s, { code: wrong });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'MFA_CODE_INVALID', details: { reason: 'invalid' } });
    expect((await verify(s, { recoveryCode: 'aaaa-bbbb-cccc-dddd' })).body.code).toBe('MFA_CODE_INVALID');
    const both = await verify(s, { code: await codeAt(user.secret), recoveryCode: user.recoveryCodes[0] });
    expect(both.status).toBe(400);
    expect(both.body.code).toBe('VALIDATION_FAILED');
    expect((await verify(s, {})).body.code).toBe('VALIDATION_FAILED');
    expect((await verify(s, { code: await codeAt(user.secret), extra: 1 })).body.code).toBe('VALIDATION_FAILED');
    expect((await sessionOf(s)).mfa).toBe('pending');
    // Nothing was consumed by the refused requests.
    expect((await verify(s, { code: await codeAt(user.secret) })).status).toBe(200);
  });

  it('verify without a factor is a conflict; signed out is 401', async () => {
    const user = await t.signUp(`no-factor-${++n}@example.com`);
    expect((await verify(user, { code: '123456' })).status).toBe(409);
    expect((await t.request('POST', '/api/auth/mfa/verify', { body: { code: '123456' } })).status).toBe(401);
    expect((await t.request('GET', '/api/auth/mfa')).status).toBe(401);
  });

  it('rate-limits guessing per account: 429 with Retry-After after the limit, even for a right code', async () => {
    const user = await enrolled('limit');
    const wrong = await wrongCode(user.secret);
    // The limit is per account: attempts spread over several sessions count together.
    for (let i = 0; i < VERIFY_LIMIT; i++) {
      const res = await verify(await signIn(user), { code: wrong });
      expect(res.status).toBe(400);
    }
    const s = await signIn(user);
    const limited = await verify(s, { code: await codeAt(user.secret) });
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await verify(s, { recoveryCode: user.recoveryCodes[0] })).status).toBe(429);
    expect((await sessionOf(s)).mfa).toBe('pending');
    // Another account is not affected.
    const other = await enrolled('limit-other');
    expect((await verify(await signIn(other), { code: await codeAt(other.secret) })).status).toBe(200);
  });

  it('rate-limits guessing per IP too: one address cannot spread guesses over many accounts', async () => {
    const attacker = '198.51.100.7'; // a documentation address: only a label for the limiter, nothing is dialled
    const limited = await createTestGatehouse({ rateLimits: { 'mfa-verify:ip': { points: 2, duration: 600 } } });
    try {
      const sessions = [];
      for (const name of ['ip-c', 'ip-d', 'ip-e']) sessions.push({ cookie: (await limited.signUp(`${name}@example.com`)).cookie });
      const statuses = [];
      for (const s of sessions) statuses.push((await limited.request('POST', '/api/auth/mfa/verify', { as: s, body: { code: '000000' }, ip: attacker })).status);
      expect(statuses.slice(0, 2).every((st) => st !== 429)).toBe(true);
      expect(statuses[2]).toBe(429);
      // Another address is not affected.
      expect((await limited.request('POST', '/api/auth/mfa/verify', { as: sessions[0]!, body: { code: '000000' }, ip: '203.0.113.9' })).status).not.toBe(429);
    } finally {
      await limited.destroy();
    }
  });

  it('a successful verify resets the attempt count', async () => {
    const user = await enrolled('limit-reset');
    const wrong = await wrongCode(user.secret);
    const s = await signIn(user);
    for (let i = 0; i < VERIFY_LIMIT - 1; i++) expect((await verify(s, { code: wrong })).status).toBe(400);
    expect((await verify(s, { code: await codeAt(user.secret) })).status).toBe(200);
    const s2 = await signIn(user);
    for (let i = 0; i < VERIFY_LIMIT - 1; i++) expect((await verify(s2, { code: wrong })).status).toBe(400);
    expect((await verify(s2, { recoveryCode: user.recoveryCodes[0] })).status).toBe(200);
  });
});

describe('Disabling MFA and recovery codes', () => {
  it('disable needs an MFA-complete session, then removes the factor and the recovery codes', async () => {
    const user = await enrolled('disable');
    const s = await signIn(user);
    const refused = await t.request('DELETE', '/api/auth/mfa/totp', { as: s });
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('MFA_REQUIRED');
    expect(await t.deps.db.selectFrom('mfa_factors').select('id').where('user_id', '=', user.id).execute()).toHaveLength(1);

    expect((await verify(s, { code: await codeAt(user.secret) })).status).toBe(200);
    const res = await t.request('DELETE', '/api/auth/mfa/totp', { as: s });
    expect(res.status).toBe(200);
    expect(await t.deps.db.selectFrom('mfa_factors').select('id').where('user_id', '=', user.id).execute()).toHaveLength(0);
    expect(await t.deps.db.selectFrom('recovery_codes').select('id').where('user_id', '=', user.id).execute()).toHaveLength(0);
    expect((await t.request('DELETE', '/api/auth/mfa/totp', { as: s })).status).toBe(404);

    // The next sign-in has no second step, and a new enrollment is possible.
    const next = await signIn(user);
    expect((await sessionOf(next)).mfa).toBe('none');
    expect((await t.request('POST', '/api/auth/mfa/totp/enroll', { as: next })).status).toBe(200);
  });

  it('an enrollment that was never confirmed can be cancelled from any session', async () => {
    const user = await t.signUp(`cancel-${++n}@example.com`);
    await t.request('POST', '/api/auth/mfa/totp/enroll', { as: user });
    expect((await t.request('DELETE', '/api/auth/mfa/totp', { as: user })).status).toBe(200);
    expect(await t.deps.db.selectFrom('mfa_factors').select('id').where('user_id', '=', user.id).execute()).toHaveLength(0);
  });

  it('regenerating recovery codes needs MFA complete and invalidates the old codes', async () => {
    const user = await enrolled('regen');
    const s = await signIn(user);
    expect((await t.request('POST', '/api/auth/mfa/recovery-codes', { as: s })).body.code).toBe('MFA_REQUIRED');
    expect((await verify(s, { code: await codeAt(user.secret) })).status).toBe(200);
    const res = await t.request('POST', '/api/auth/mfa/recovery-codes', { as: s });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const fresh: string[] = res.body.data.recoveryCodes;
    expect(fresh).toHaveLength(10);
    const s2 = await signIn(user);
    expect((await verify(s2, { recoveryCode: user.recoveryCodes[0] })).status).toBe(400);
    expect((await verify(s2, { recoveryCode: fresh[0] })).status).toBe(200);
  });

  it('an API key cannot enroll, verify, disable or read MFA (403 FORBIDDEN)', async () => {
    const user = await enrolled('api-key');
    const s = await signIn(user);
    await verify(s, { code: await codeAt(user.secret) });
    const { key } = await createApiKey(t, { ...user, cookie: s.cookie });
    const calls: Array<[string, string, unknown?]> = [
      ['GET', '/api/auth/mfa'],
      ['POST', '/api/auth/mfa/totp/enroll'],
      ['POST', '/api/auth/mfa/totp/confirm', { code: '123456' }],
      ['POST', '/api/auth/mfa/verify', { code: await codeAt(user.secret, 1) }],
      ['POST', '/api/auth/mfa/recovery-codes'],
      ['DELETE', '/api/auth/mfa/totp'],
    ];
    for (const [method, path, body] of calls) {
      const res = await t.request(method, path, { apiKey: key, ...(body ? { body } : {}) });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.code).toBe('FORBIDDEN');
      expect(res.body.message).toMatch(/API key/);
    }
    expect(await t.deps.db.selectFrom('mfa_factors').select('id').where('user_id', '=', user.id).execute()).toHaveLength(1);
    expect(await t.deps.db.selectFrom('recovery_codes').select('id').where('user_id', '=', user.id).where('used_at', 'is', null).execute()).toHaveLength(10);
  });

  it('confirming a factor ends the other sessions, which never faced a second step (one may be stolen)', async () => {
    const user = await t.signUp(`others-${++n}@example.com`);
    const other = await signIn(user);
    const enroll = await t.request('POST', '/api/auth/mfa/totp/enroll', { as: user });
    const confirm = await t.request('POST', '/api/auth/mfa/totp/confirm', { as: user, body: { code: await codeAt(enroll.body.data.secret) } });
    expect(confirm.status).toBe(200);
    expect((await t.request('GET', '/api/auth/session', { as: other })).status).toBe(401);
    expect((await sessionOf(user)).mfa).toBe('complete');
  });

  it('records every step in the audit log, without the secret or any code', async () => {
    const user = await enrolled('audit');
    const s = await signIn(user);
    await verify(s, { code: await wrongCode(user.secret) });
    await verify(s, { code: await codeAt(user.secret) });
    const s2 = await signIn(user);
    await verify(s2, { recoveryCode: user.recoveryCodes[0] });
    await t.request('DELETE', '/api/auth/mfa/totp', { as: s2 });
    const events = await auditOf(user.id);
    const mfa = events.filter((e) => e.action.startsWith('mfa.')).map((e) => ({ action: e.action, metadata: e.metadata ? JSON.parse(e.metadata) : null }));
    expect(mfa).toEqual([
      { action: 'mfa.enrollment_started', metadata: { type: 'totp' } },
      { action: 'mfa.enrolled', metadata: { type: 'totp', otherSessionsRevoked: 0 } },
      { action: 'mfa.verify_failed', metadata: { method: 'totp', reason: 'invalid' } },
      { action: 'mfa.verified', metadata: { method: 'totp' } },
      { action: 'mfa.recovery_code_used', metadata: { remaining: 9 } },
      { action: 'mfa.verified', metadata: { method: 'recovery_code' } },
      { action: 'mfa.disabled', metadata: { type: 'totp' } },
    ]);
    const dump = JSON.stringify(events);
    expect(dump).not.toContain(user.secret);
    for (const c of user.recoveryCodes) expect(dump).not.toContain(c);
  });
});
