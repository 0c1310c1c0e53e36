import { describe, expect, it } from 'vitest';
import * as cb from '../../src/sso/oidc/callback-checks.js';
import { entraEmailVerified } from '../../src/sso/oidc/service.js';
import { mixUpProtection } from '../../src/sso/oidc/mix-up.js';
import { shouldPush } from '../../src/sso/oidc/par.js';
import type { Connection } from '../../src/sso/connections/model.js';
import type { Discovery } from '../../src/sso/oidc/metadata.js';
import type { FlowRow } from '../../src/sso/flows.js';
import { SsoLoginError } from '../../src/sso/errors.js';
import { reasonOf } from '../helpers/sso.js';

/** The mix-up and tenant checks of the OIDC callback, one by one (the attacks end to end: oidc-mix-up.test.ts, oidc-entra.test.ts). */

const CORP = '01JCORP0000000000000000000';
const EVIL = '01JEVIL0000000000000000000';
const flow = { organization_id: CORP, protocol: 'oidc' } as FlowRow;
const connection = (issuer: string, oidc: Partial<NonNullable<Connection['oidc']>> = {}, provider = 'oidc'): Connection =>
  ({ issuer, provider, oidc: { protocol: 'oidc', issuerUrl: issuer, clientId: 'c', scopes: ['openid'], ...oidc } }) as Connection;
const discovery = (extra: Partial<Discovery> = {}): Discovery => ({ issuer: 'https://idp.example', authorization_endpoint: 'a', token_endpoint: 't', jwks_uri: 'j', ...extra });

describe('redirect URI of the flow (mix-up defence 1)', () => {
  it('a dedicated flow fits only its own organization’s path', () => {
    expect(reasonOf(() => cb.checkCallbackPath(flow, 'dedicated', { organizationId: CORP }))).toBe('passed');
    expect(reasonOf(() => cb.checkCallbackPath(flow, 'dedicated', { organizationId: EVIL }))).toBe('state_invalid');
    expect(reasonOf(() => cb.checkCallbackPath(flow, 'dedicated', { organizationId: null }))).toBe('state_invalid');
  });

  it('a shared flow fits only the shared path', () => {
    expect(reasonOf(() => cb.checkCallbackPath(flow, 'shared', { organizationId: null }))).toBe('passed');
    expect(reasonOf(() => cb.checkCallbackPath(flow, 'shared', { organizationId: CORP }))).toBe('state_invalid');
  });
});

describe('RFC 9207 iss (mix-up defence 2)', () => {
  it('an absent iss passes the first check; a wrong one is issuer_mismatch; the right one passes', () => {
    const c = connection('https://corp.example');
    expect(reasonOf(() => cb.checkIssParameter({}, c))).toBe('passed');
    expect(reasonOf(() => cb.checkIssParameter({ iss: 'https://corp.example' }, c))).toBe('passed');
    expect(reasonOf(() => cb.checkIssParameter({ iss: 'https://evil.example' }, c))).toBe('issuer_mismatch');
    expect(reasonOf(() => cb.checkIssParameter({ iss: 'https://corp.example/' }, c))).toBe('issuer_mismatch'); // exact, RFC 9207 §2.4
  });

  it('is required (iss_missing) only when discovery announces it', () => {
    expect(reasonOf(() => cb.checkIssRequired({}, discovery()))).toBe('passed');
    expect(reasonOf(() => cb.checkIssRequired({}, discovery({ authorization_response_iss_parameter_supported: true })))).toBe('iss_missing');
    expect(reasonOf(() => cb.checkIssRequired({ iss: 'x' }, discovery({ authorization_response_iss_parameter_supported: true })))).toBe('passed');
  });
});

describe('mixUpProtection and PAR', () => {
  it('reports dedicated, iss, par, none in that order of preference', () => {
    expect(mixUpProtection('dedicated', null)).toBe('dedicated');
    expect(mixUpProtection('shared', discovery({ authorization_response_iss_parameter_supported: true, pushed_authorization_request_endpoint: 'p' }))).toBe('iss');
    expect(mixUpProtection('shared', discovery({ pushed_authorization_request_endpoint: 'p' }))).toBe('par');
    expect(mixUpProtection('shared', discovery())).toBe('none');
    expect(mixUpProtection('shared', null)).toBe('none'); // an IdP that cannot be asked is not counted on
  });

  it('pushes in shared mode when offered, in any mode when required, never without an endpoint', () => {
    expect(shouldPush(discovery({ pushed_authorization_request_endpoint: 'p' }), 'shared')).toBe(true);
    expect(shouldPush(discovery({ pushed_authorization_request_endpoint: 'p' }), 'dedicated')).toBe(false);
    expect(shouldPush(discovery({ pushed_authorization_request_endpoint: 'p', require_pushed_authorization_requests: true }), 'dedicated')).toBe(true);
    expect(shouldPush(discovery({ require_pushed_authorization_requests: true }), 'shared')).toBe(false);
  });
});

describe('Entra email verification for linking', () => {
  const multi = connection('https://login.microsoftonline.com/{tenantid}/v2.0', { allowedTenants: ['3f1c2a9e-8d4b-4c6a-9e2f-0a1b2c3d4e5f'] });
  const single = connection('https://login.microsoftonline.com/3f1c2a9e-8d4b-4c6a-9e2f-0a1b2c3d4e5f/v2.0', {}, 'azure');

  it('multi-tenant: unverified unless xms_edov is true, whatever email_verified says', () => {
    expect(entraEmailVerified(multi, {}, true)).toBe(false);
    expect(entraEmailVerified(multi, {}, null)).toBe(false);
    expect(entraEmailVerified(multi, { xms_edov: false }, true)).toBe(false);
    expect(entraEmailVerified(multi, { xms_edov: 'true' }, null)).toBe(null); // not disowned: linking may proceed
    expect(entraEmailVerified(multi, { xms_edov: true }, false)).toBe(false); // email_verified: false still wins
  });

  it('single tenant: only xms_edov false disowns the email', () => {
    expect(entraEmailVerified(single, {}, null)).toBe(null);
    expect(entraEmailVerified(single, { xms_edov: false }, null)).toBe(false);
    expect(entraEmailVerified(connection('https://idp.example'), { xms_edov: false }, true)).toBe(true); // not Entra: the claim means nothing
  });
});
