import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestGatehouse, type TestGatehouse } from '../helpers/app.js';

/*
 * SPEC §12: a per-account limit never lets a stranger lock the owner out from the owner's own
 * address (failures are counted per account and IP), and a far higher per-account ceiling still
 * stops distributed guessing. Addresses are documentation ranges used as labels only: the
 * in-process app dials nothing.
 */
const PER_ADDRESS = 3;
const CEILING = 6;
const OWNER_HOME = '203.0.113.5';
const stranger = (i: number) => `198.51.100.${i}`;

let t: TestGatehouse;
beforeAll(async () => {
  t = await createTestGatehouse({
    rateLimits: {
      'sign-in:account-ip': { points: PER_ADDRESS, duration: 900 },
      'sign-in:account': { points: CEILING, duration: 3600 },
      'magic-link:account-ip': { points: PER_ADDRESS, duration: 900 },
      'magic-link:account': { points: CEILING, duration: 3600 },
      'password-reset:account-ip': { points: PER_ADDRESS, duration: 900 },
      'password-reset:account': { points: CEILING, duration: 3600 },
      'mfa-verify:account-ip': { points: PER_ADDRESS, duration: 900 },
      'mfa-verify:account': { points: CEILING, duration: 3600 },
    },
  });
});
afterAll(async () => {
  await t.destroy();
});

const signIn = (email: string, password: string, ip: string) => t.request('POST', '/api/auth/sign-in/email', { body: { email, password }, ip });

/** An account whose owner has signed in from OWNER_HOME before. */
async function ownerAt(name: string) {
  const owner = await t.signUp(`${name}@example.com`, 'the owner password');
  expect((await signIn(owner.email, owner.password, OWNER_HOME)).status).toBe(200);
  return owner;
}

describe('sign-in account limits', () => {
  it("a stranger's failures from other addresses do not lock the owner out from the owner's own address", async () => {
    const owner = await ownerAt('victim');
    // The lock-out of the review: ten wrong passwords from ten addresses.
    const statuses = [];
    for (let i = 1; i <= 10; i++) statuses.push((await signIn(owner.email, 'guess', stranger(i))).status);
    expect(statuses.slice(0, CEILING)).toEqual(Array(CEILING).fill(401));
    expect(statuses.slice(CEILING)).toEqual(Array(10 - CEILING).fill(429));
    expect((await signIn(owner.email, owner.password, OWNER_HOME)).status).toBe(200);
    expect((await signIn(owner.email, owner.password, OWNER_HOME)).status).toBe(200);
  });

  it('distributed guessing still hits the high per-account ceiling, even with the right password from a new address', async () => {
    const owner = await ownerAt('distributed');
    for (let i = 1; i <= CEILING; i++) expect((await signIn(owner.email, 'guess', stranger(20 + i))).status).toBe(401);
    const right = await signIn(owner.email, owner.password, stranger(40));
    expect(right.status).toBe(429);
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('one address guessing one account is stopped by the per-account-and-IP limit, and only that address is', async () => {
    const owner = await ownerAt('single-source');
    for (let i = 0; i < PER_ADDRESS; i++) expect((await signIn(owner.email, 'guess', stranger(60))).status).toBe(401);
    expect((await signIn(owner.email, owner.password, stranger(60))).status).toBe(429);
    expect((await signIn(owner.email, 'guess', stranger(61))).status).toBe(401);
    expect((await signIn(owner.email, owner.password, OWNER_HOME)).status).toBe(200);
  });

  it("the owner's own failures from home are forgiven by the owner's success", async () => {
    const owner = await ownerAt('typo');
    for (let i = 0; i < PER_ADDRESS - 1; i++) expect((await signIn(owner.email, 'typo', OWNER_HOME)).status).toBe(401);
    expect((await signIn(owner.email, owner.password, OWNER_HOME)).status).toBe(200);
    for (let i = 0; i < PER_ADDRESS - 1; i++) expect((await signIn(owner.email, 'typo', OWNER_HOME)).status).toBe(401);
    expect((await signIn(owner.email, owner.password, OWNER_HOME)).status).toBe(200);
  });
});

describe('known addresses after a claim', () => {
  it("a squatter who pre-registered the victim's address does not keep the squatter's addresses exempt from the ceiling after the owner claims the account", async () => {
    const SQUATTER = ['192.0.2.201', '192.0.2.202'];
    const email = 'claimed-victim@example.com';
    // The squatter signs the address up (never verified) and signs in from a second address.
    const up = await t.request('POST', '/api/auth/sign-up/email', { body: { email, password: 'squatter password' }, ip: SQUATTER[0] });
    expect(up.status).toBe(201);
    expect((await signIn(email, 'squatter password', SQUATTER[1]!)).status).toBe(200);
    // The mailbox owner resets the password: the claim ends everything the squatter set up.
    expect((await t.request('POST', '/api/auth/password/forgot', { body: { email }, ip: OWNER_HOME })).status).toBe(200);
    await t.services.emailLinks.idle(); // the mail is sent in the background
    const mail = t.mails.findLast((m) => m.to === email);
    const token = mail && /\/reset-password\?token=([A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
    expect(token).toBeTruthy();
    expect((await t.request('POST', '/api/auth/password/reset', { body: { token, password: 'the owner password' }, ip: OWNER_HOME })).status).toBe(200);
    expect((await t.request('GET', '/api/auth/session', { as: { cookie: up.cookie! } })).status).toBe(401);
    expect((await signIn(email, 'the owner password', OWNER_HOME)).status).toBe(200);

    // A botnet spends the ceiling: new addresses are refused now.
    for (let i = 1; i <= CEILING; i++) expect((await signIn(email, 'guess', stranger(100 + i))).status).toBe(401);
    expect((await signIn(email, 'guess', stranger(120))).status).toBe(429);
    // The squatter's addresses are not the owner's: the ceiling holds there too.
    for (const ip of SQUATTER) expect((await signIn(email, 'guess', ip)).status).toBe(429);
    // The owner's own address still is.
    expect((await signIn(email, 'the owner password', OWNER_HOME)).status).toBe(200);
  });
});

describe('magic-link and password-reset account limits', () => {
  for (const [flow, path] of [['magic link', '/api/auth/magic-link'], ['password reset', '/api/auth/password/forgot']] as const) {
    it(`a stranger asking ${flow}s for the owner from many addresses does not lock the owner out from home; the ceiling caps the mails`, async () => {
      const owner = await ownerAt(`mail-${flow.replace(' ', '-')}`);
      const ask = (ip: string) => t.request('POST', path, { body: { email: owner.email }, ip });
      for (let i = 1; i <= CEILING; i++) expect((await ask(stranger(80 + i))).status).toBe(200);
      expect((await ask(stranger(99))).status).toBe(429);
      expect((await ask(OWNER_HOME)).status).toBe(200);
      // One address alone is held to the per-address limit.
      for (let i = 1; i < PER_ADDRESS; i++) expect((await ask(OWNER_HOME)).status).toBe(200);
      expect((await ask(OWNER_HOME)).status).toBe(429);
    });
  }
});

describe('MFA verify account limits', () => {
  it("a stranger who knows the password cannot lock the owner's second factor from other addresses", async () => {
    const owner = await t.signUp('mfa-owner@example.com', 'the owner password');
    const enroll = await t.request('POST', '/api/auth/mfa/totp/enroll', { as: owner, ip: OWNER_HOME });
    const secret: string = enroll.body.data.secret;
    const code = (steps = 0) => generate({ secret, epoch: Math.floor(t.clock.now().getTime() / 1000) + steps * 30 });
    expect((await t.request('POST', '/api/auth/mfa/totp/confirm', { as: owner, body: { code: await code() } })).status).toBe(200);
    // The owner completes MFA once from home.
    const home = await signIn(owner.email, owner.password, OWNER_HOME);
    t.clock.advance(90_000);
    expect((await t.request('POST', '/api/auth/mfa/verify', { as: { cookie: home.cookie! }, body: { code: await code() }, ip: OWNER_HOME })).status).toBe(200);

    // The stranger signs in elsewhere (MFA pending) and guesses from many addresses.
    const statuses = [];
    for (let i = 1; i <= CEILING + 2; i++) {
      const s = await signIn(owner.email, owner.password, stranger(100 + i));
      statuses.push((await t.request('POST', '/api/auth/mfa/verify', { as: { cookie: s.cookie! }, body: { code: '000000' }, ip: stranger(100 + i) })).status);
    }
    expect(statuses.slice(CEILING)).toEqual([429, 429]);
    const again = await signIn(owner.email, owner.password, stranger(120));
    expect((await t.request('POST', '/api/auth/mfa/verify', { as: { cookie: again.cookie! }, body: { code: await code() }, ip: stranger(120) })).status).toBe(429);
    // The owner, from home, still completes MFA.
    const next = await signIn(owner.email, owner.password, OWNER_HOME);
    t.clock.advance(90_000);
    expect((await t.request('POST', '/api/auth/mfa/verify', { as: { cookie: next.cookie! }, body: { code: await code() }, ip: OWNER_HOME })).status).toBe(200);
  });
});
