import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { testKeySpec } from '../helpers/app.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe('configuration', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      baseUrl: 'http://localhost:3000',
      databaseUrl: 'sqlite:./data/gatehouse.db',
      secretKeys: null,
      trustedOrigins: ['http://localhost:3000'],
      dnsServers: null,
      allowLoopbackIdps: false,
      smtpUrl: null,
      redisUrl: null,
      logLevel: 'info',
      secureCookies: false,
      oidcRedirectMode: 'dedicated',
      dbStatementTimeoutMs: 10_000,
      dbConnectTimeoutMs: 5_000,
    });
  });

  it('validates the database timeouts (0 turns the statement timeout off)', () => {
    expect(loadConfig({ GATEHOUSE_DB_STATEMENT_TIMEOUT_MS: '0', GATEHOUSE_DB_CONNECT_TIMEOUT_MS: '2500' })).toMatchObject({ dbStatementTimeoutMs: 0, dbConnectTimeoutMs: 2500 });
    expect(problems({ GATEHOUSE_DB_STATEMENT_TIMEOUT_MS: 'soon' })[0]).toMatch(/^GATEHOUSE_DB_STATEMENT_TIMEOUT_MS: must be a number of milliseconds/);
    expect(problems({ GATEHOUSE_DB_STATEMENT_TIMEOUT_MS: '50' })[0]).toMatch(/^GATEHOUSE_DB_STATEMENT_TIMEOUT_MS: must be 0 \(no limit\) or 100–600000 ms/);
    expect(problems({ GATEHOUSE_DB_STATEMENT_TIMEOUT_MS: '1.5' })[0]).toMatch(/^GATEHOUSE_DB_STATEMENT_TIMEOUT_MS: must be a whole number/);
    expect(problems({ GATEHOUSE_DB_CONNECT_TIMEOUT_MS: '0' })[0]).toMatch(/^GATEHOUSE_DB_CONNECT_TIMEOUT_MS: must be at least 100 ms/);
    expect(problems({ GATEHOUSE_DB_CONNECT_TIMEOUT_MS: '999999' })[0]).toMatch(/^GATEHOUSE_DB_CONNECT_TIMEOUT_MS: must be at most 120000 ms/);
  });

  it('GATEHOUSE_OIDC_REDIRECT_MODE: dedicated by default, shared on request, anything else refused at start-up', () => {
    expect(loadConfig({ GATEHOUSE_OIDC_REDIRECT_MODE: 'shared' }).oidcRedirectMode).toBe('shared');
    expect(loadConfig({ GATEHOUSE_OIDC_REDIRECT_MODE: 'dedicated' }).oidcRedirectMode).toBe('dedicated');
    expect(problems({ GATEHOUSE_OIDC_REDIRECT_MODE: 'per-org' })[0]).toMatch(/^GATEHOUSE_OIDC_REDIRECT_MODE: must be dedicated or shared \(got "per-org"\)/);
    expect(loadConfig({}).oidcSharedRedirect).toBe(true);
    expect(loadConfig({ GATEHOUSE_OIDC_SHARED_REDIRECT: 'false' }).oidcSharedRedirect).toBe(false);
    expect(problems({ GATEHOUSE_OIDC_REDIRECT_MODE: 'shared', GATEHOUSE_OIDC_SHARED_REDIRECT: 'false' })[0]).toMatch(/^GATEHOUSE_OIDC_REDIRECT_MODE: cannot be shared when GATEHOUSE_OIDC_SHARED_REDIRECT=false/);
  });

  it('derives the base URL from PORT and adds trusted origins to it', () => {
    const c = loadConfig({ PORT: '8080', GATEHOUSE_TRUSTED_ORIGINS: 'https://app.example.com/, https://admin.example.com' });
    expect(c.baseUrl).toBe('http://localhost:8080');
    expect(c.trustedOrigins).toEqual(['http://localhost:8080', 'https://app.example.com', 'https://admin.example.com']);
  });

  it('names the variable and the problem for each bad value', () => {
    expect(problems({ PORT: 'eighty' })[0]).toMatch(/^PORT: /);
    expect(problems({ PORT: '70000' })[0]).toMatch(/^PORT: /);
    expect(problems({ DATABASE_URL: 'mysql://x' })[0]).toMatch(/^DATABASE_URL: must be sqlite:<path> or postgres/);
    expect(problems({ GATEHOUSE_BASE_URL: 'not a url' })[0]).toMatch(/^GATEHOUSE_BASE_URL: /);
    expect(problems({ GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'maybe' })[0]).toMatch(/^GATEHOUSE_ALLOW_LOOPBACK_IDPS: must be true or false/);
    expect(problems({ GATEHOUSE_LOG_LEVEL: 'loud' })[0]).toMatch(/^GATEHOUSE_LOG_LEVEL: /);
    expect(problems({ GATEHOUSE_TRUSTED_ORIGINS: 'ftp://x' })[0]).toMatch(/^GATEHOUSE_TRUSTED_ORIGINS: .*http or https/);
    expect(problems({ GATEHOUSE_DNS_SERVERS: '1.2.3.4:99999' })[0]).toMatch(/^GATEHOUSE_DNS_SERVERS: /);
    expect(problems({ GATEHOUSE_DNS_SERVERS: '1.2' })[0]).toMatch(/^GATEHOUSE_DNS_SERVERS: "1.2" is not ip/);
    expect(problems({ GATEHOUSE_DNS_SERVERS: '300.1.1.1' })[0]).toMatch(/^GATEHOUSE_DNS_SERVERS: /);
    expect(problems({ SMTP_URL: 'http://mail' })[0]).toMatch(/^SMTP_URL: /);
    expect(problems({ REDIS_URL: 'localhost' })[0]).toMatch(/^REDIS_URL: /);
    expect(problems({ GATEHOUSE_SECRET_KEYS: 'k1:dG9vc2hvcnQ=' })[0]).toMatch(/^GATEHOUSE_SECRET_KEYS: key "k1" must decode to 32 bytes/);
    const two = testKeySpec('same');
    expect(problems({ GATEHOUSE_SECRET_KEYS: `${two},${two}` })[0]).toMatch(/appears twice/);
    // A secret value is never echoed back in the message.
    expect(problems({ GATEHOUSE_SECRET_KEYS: 'nokid' }).join()).not.toContain('nokid');
  });

  it('reports every bad variable at once', () => {
    expect(problems({ PORT: 'x', GATEHOUSE_LOG_LEVEL: 'y' })).toHaveLength(2);
  });

  it('in production refuses the generated key file and a non-https base URL', () => {
    const p = problems({ NODE_ENV: 'production', GATEHOUSE_BASE_URL: 'http://auth.example.com' });
    expect(p.some((x) => x.startsWith('GATEHOUSE_BASE_URL: must be https'))).toBe(true);
    expect(p.some((x) => x.startsWith('GATEHOUSE_SECRET_KEYS: required'))).toBe(true);
    expect(problems({ NODE_ENV: 'production', GATEHOUSE_BASE_URL: 'https://auth.example.com', GATEHOUSE_SECRET_KEYS: testKeySpec() })).toEqual([]);
    expect(problems({ NODE_ENV: 'production', GATEHOUSE_BASE_URL: 'https://auth.example.com', GATEHOUSE_SECRET_KEYS: testKeySpec(), GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' })[0]).toMatch(/GATEHOUSE_ALLOW_LOOPBACK_IDPS/);
  });

  it('treats empty values as unset and marks cookies Secure for an https base URL', () => {
    expect(loadConfig({ PORT: '' }).port).toBe(3000);
    expect(loadConfig({ GATEHOUSE_BASE_URL: 'https://auth.example.com/' }).secureCookies).toBe(true);
    expect(loadConfig({ GATEHOUSE_BASE_URL: 'https://auth.example.com/' }).baseUrl).toBe('https://auth.example.com');
  });
});
