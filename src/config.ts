import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * Every environment variable Gatehouse reads (SPEC §1), in one schema, validated once at start-up.
 * Nothing else in the code reads process.env.
 */

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** SPEC §12: an OIDC connection's redirect URI is its organization's own (dedicated) or the one shared by all. */
export const OIDC_REDIRECT_MODES = ['dedicated', 'shared'] as const;
export type OidcRedirectMode = (typeof OIDC_REDIRECT_MODES)[number];

const boolString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const originList = z.string().transform((value, ctx) => {
  const out: string[] = [];
  for (const raw of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      ctx.addIssue({ code: 'custom', message: `"${raw}" is not a URL origin such as https://app.example.com` });
      return z.NEVER;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      ctx.addIssue({ code: 'custom', message: `"${raw}" must use http or https` });
      return z.NEVER;
    }
    out.push(url.origin);
  }
  return out;
});

const dnsServers = z.string().transform((value, ctx) => {
  const out: string[] = [];
  for (const raw of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    // ip, ip:port, [ipv6]:port or bare ipv6
    const m = /^(?:\[([0-9a-fA-F:]+)\]|([0-9.]+)|([0-9a-fA-F:]+))(?::(\d{1,5}))?$/.exec(raw);
    const port = m?.[4] ? Number(m[4]) : 53;
    const host = m ? (m[1] ?? m[2] ?? m[3] ?? '') : '';
    if (!m || isIP(host) === 0 || port < 1 || port > 65535 || (m[3] !== undefined && m[4] !== undefined)) {
      ctx.addIssue({ code: 'custom', message: `"${raw}" is not ip[:port]` });
      return z.NEVER;
    }
    out.push(raw);
  }
  return out;
});

/**
 * GATEHOUSE_TRUSTED_PROXIES: comma list of addresses or CIDRs (IPv4 and IPv6). Each becomes a
 * normalised `address/prefix`; an IPv4-mapped IPv6 spelling (::ffff:10.0.0.1) is taken as IPv4.
 */
export function parseCidr(raw: string): { address: string; prefix: number; family: 4 | 6 } | null {
  const m = /^([^/]+?)(?:\/(\d{1,3}))?$/.exec(raw.trim());
  if (!m) return null;
  let address = m[1]!.replace(/^\[(.*)\]$/, '$1');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped && m[2] === undefined) address = mapped[1]!;
  const family = isIP(address);
  if (family !== 4 && family !== 6) return null;
  const max = family === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return null;
  return { address: family === 6 ? address.toLowerCase() : address, prefix, family };
}

const proxyList = z.string().transform((value, ctx) => {
  const out: string[] = [];
  for (const raw of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const cidr = parseCidr(raw);
    if (!cidr) {
      ctx.addIssue({ code: 'custom', message: `"${raw}" is not an IPv4/IPv6 address or CIDR such as 10.0.0.0/8 or fd00::/8` });
      return z.NEVER;
    }
    out.push(`${cidr.address}/${cidr.prefix}`);
  }
  return out;
});

/** A duration such as `90s`, `10m`, `1h` or a number of seconds; parsed to milliseconds. */
export function parseDuration(raw: string): number | null {
  const m = /^(\d+)\s*(ms|s|m|h|d)?$/.exec(raw.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return n * unit;
}

const duration = (min: number, max: number, shown: string) =>
  z.string().transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: 'must be a duration such as 30s, 10m or 1h' });
      return z.NEVER;
    }
    if (ms < min || ms > max) {
      ctx.addIssue({ code: 'custom', message: `must be ${shown}` });
      return z.NEVER;
    }
    return ms;
  });

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number({ message: 'must be a port number' }).int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  GATEHOUSE_BASE_URL: z.url({ message: 'must be an absolute http(s) URL' }).optional(),
  DATABASE_URL: z
    .string()
    .default('sqlite:./data/gatehouse.db')
    .refine((v) => v.startsWith('sqlite:') || v.startsWith('postgres://') || v.startsWith('postgresql://'), {
      message: 'must be sqlite:<path> or postgres://…',
    }),
  GATEHOUSE_DB_STATEMENT_TIMEOUT_MS: z.coerce
    .number({ message: 'must be a number of milliseconds' })
    .int({ message: 'must be a whole number of milliseconds' })
    .refine((v) => v === 0 || (v >= 100 && v <= 600_000), { message: 'must be 0 (no limit) or 100–600000 ms' })
    .default(10_000),
  GATEHOUSE_DB_CONNECT_TIMEOUT_MS: z.coerce
    .number({ message: 'must be a number of milliseconds' })
    .int({ message: 'must be a whole number of milliseconds' })
    .min(100, { message: 'must be at least 100 ms' })
    .max(120_000, { message: 'must be at most 120000 ms' })
    .default(5_000),
  GATEHOUSE_SECRET_KEYS: z.string().optional(),
  GATEHOUSE_SECRET_KEY_FILE: z.string().default('./data/secret.key'),
  GATEHOUSE_TRUSTED_ORIGINS: originList.optional(),
  GATEHOUSE_DNS_SERVERS: dnsServers.optional(),
  GATEHOUSE_TRUSTED_PROXIES: proxyList.optional(),
  GATEHOUSE_ALLOW_LOOPBACK_IDPS: boolString.default(false),
  GATEHOUSE_LOGOUT_SENDER: boolString.default(true),
  GATEHOUSE_IDP_TOKEN_REFRESHER: boolString.default(true),
  GATEHOUSE_HOUSEKEEPING: boolString.default(true),
  GATEHOUSE_HOUSEKEEPING_INTERVAL: duration(60_000, 86_400_000, 'between 1m and 1d').default(600_000),
  GATEHOUSE_SHUTDOWN_TIMEOUT: duration(0, 600_000, 'between 0 and 10m').default(10_000),
  GATEHOUSE_SESSION_CACHE_SIZE: z.coerce
    .number({ message: 'must be a whole number of sessions' })
    .int({ message: 'must be a whole number of sessions' })
    .min(0, { message: 'must be 0 (no cache) or more' })
    .max(10_000_000, { message: 'must be at most 10000000' })
    .default(100_000),
  SMTP_URL: z
    .string()
    .refine((v) => /^smtps?:\/\//.test(v), { message: 'must be smtp://… or smtps://…' })
    .optional(),
  GATEHOUSE_EMAIL_FROM: z.string().default('Gatehouse <no-reply@localhost>'),
  REDIS_URL: z
    .string()
    .refine((v) => /^rediss?:\/\//.test(v), { message: 'must be redis://… or rediss://…' })
    .optional(),
  GATEHOUSE_OIDC_REDIRECT_MODE: z.enum(OIDC_REDIRECT_MODES, { message: 'must be dedicated or shared' }).default('dedicated'),
  GATEHOUSE_OIDC_SHARED_REDIRECT: boolString.default(true),
  GATEHOUSE_TOKEN_AUDIENCE: z.string().min(1).max(2048).optional(),
  GATEHOUSE_KEY_ACTIVATION_DELAY: duration(0, 7 * 86_400_000, 'between 0 and 7d').default(600_000),
  GATEHOUSE_ACCESS_TOKEN_TTL: duration(60_000, 3_600_000, 'between 1m and 1h').default(600_000),
  GATEHOUSE_REFRESH_TOKEN_TTL: duration(3_600_000, 90 * 86_400_000, 'between 1h and 90d').default(30 * 86_400_000),
  GATEHOUSE_LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  GATEHOUSE_METRICS: boolString.default(true),
  GATEHOUSE_METRICS_TOKEN: z
    .string()
    .regex(/^[A-Za-z0-9._~+/-]{16,512}=*$/, { message: 'must be 16–512 characters of A-Z a-z 0-9 - . _ ~ + / (a bearer token, e.g. openssl rand -hex 32)' })
    .optional(),
});

export interface Config {
  env: 'development' | 'production' | 'test';
  port: number;
  host: string;
  baseUrl: string;
  /** Origin of baseUrl. */
  baseOrigin: string;
  secureCookies: boolean;
  databaseUrl: string;
  /** Longest one database statement may run (PostgreSQL statement_timeout, SQLite busy_timeout); 0 = no limit. */
  dbStatementTimeoutMs: number;
  /** Longest wait for a new PostgreSQL connection. */
  dbConnectTimeoutMs: number;
  /** Raw key ring spec (kid:base64,…) or null when the generated key file is used. */
  secretKeys: string | null;
  secretKeyFile: string;
  trustedOrigins: string[];
  dnsServers: string[] | null;
  /** `address/prefix` of the proxies whose X-Forwarded-For is believed; empty = the socket address only. */
  trustedProxies: string[];
  allowLoopbackIdps: boolean;
  /** GATEHOUSE_LOGOUT_SENDER: whether this instance sends queued back-channel logout tokens (every instance queues them). */
  logoutSender: boolean;
  /** GATEHOUSE_SESSION_CACHE_SIZE: live sessions this instance keeps in memory (0: none; sessions/cache.ts). */
  sessionCacheSize: number;
  /** GATEHOUSE_IDP_TOKEN_REFRESHER: whether this instance takes its turn at the IdP token refresh sweep (one instance sweeps at a time). */
  idpTokenRefresher: boolean;
  /** GATEHOUSE_HOUSEKEEPING: whether this instance takes its turn at purging expired rows (one instance purges at a time; jobs/housekeeping.ts). */
  housekeeping: boolean;
  /** GATEHOUSE_HOUSEKEEPING_INTERVAL: time between two purges (ms). */
  housekeepingIntervalMs: number;
  /** GATEHOUSE_SHUTDOWN_TIMEOUT: how long a stopping instance lets in-flight requests finish before it closes their connections (ms). */
  shutdownTimeoutMs: number;
  smtpUrl: string | null;
  emailFrom: string;
  redisUrl: string | null;
  /** GATEHOUSE_OIDC_REDIRECT_MODE: the redirectUriMode of OIDC connections that do not store one. */
  oidcRedirectMode: OidcRedirectMode;
  /**
   * GATEHOUSE_OIDC_SHARED_REDIRECT: whether the shared redirect URI is served at all. Off, every
   * OIDC connection uses its dedicated one whatever it stored, and nothing answered on the shared
   * path is accepted (SPEC §12 mix-up; see sso/connections/model.ts redirectUriModeOf).
   */
  oidcSharedRedirect: boolean;
  /** GATEHOUSE_TOKEN_AUDIENCE: the `aud` of session access tokens (default the base URL). */
  tokenAudience: string;
  /** GATEHOUSE_KEY_ACTIVATION_DELAY: how long a new signing key is published before it signs (ms). */
  keyActivationDelayMs: number;
  /** GATEHOUSE_ACCESS_TOKEN_TTL: lifetime of access tokens (ms, ≤ 1 h). */
  accessTokenTtlMs: number;
  /** GATEHOUSE_REFRESH_TOKEN_TTL: lifetime of a refresh token (ms; it also ends with its session). */
  refreshTokenTtlMs: number;
  logLevel: (typeof LOG_LEVELS)[number];
  /** GATEHOUSE_METRICS: whether GET /metrics is served (src/metrics/). */
  metrics: boolean;
  /** GATEHOUSE_METRICS_TOKEN: the bearer token GET /metrics requires, or null (no token asked). */
  metricsToken: string | null;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parse and validate the environment. Throws ConfigError naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Treat empty strings as unset so `FOO= gatehouse start` behaves like FOO being absent.
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') cleaned[key] = v;
  }
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => {
        const name = String(i.path[0] ?? '?');
        const shown = cleaned[name] !== undefined && !/KEY|SECRET|URL$|_TOKEN$/.test(name) ? ` (got "${cleaned[name]}")` : '';
        return `${name}: ${i.message}${shown}`;
      }),
    );
  }
  const e = parsed.data;
  const baseUrl = (e.GATEHOUSE_BASE_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '');
  const base = new URL(baseUrl);
  const problems: string[] = [];
  if (base.protocol !== 'http:' && base.protocol !== 'https:') problems.push('GATEHOUSE_BASE_URL: must use http or https');
  if (base.search || base.hash) problems.push('GATEHOUSE_BASE_URL: must not contain a query or fragment');
  if (e.NODE_ENV === 'production') {
    if (base.protocol !== 'https:') problems.push('GATEHOUSE_BASE_URL: must be https when NODE_ENV=production');
    if (!e.GATEHOUSE_SECRET_KEYS)
      problems.push('GATEHOUSE_SECRET_KEYS: required when NODE_ENV=production (the generated key file is for development only)');
    if (e.GATEHOUSE_ALLOW_LOOPBACK_IDPS) problems.push('GATEHOUSE_ALLOW_LOOPBACK_IDPS: must not be true when NODE_ENV=production');
  }
  if (e.GATEHOUSE_OIDC_REDIRECT_MODE === 'shared' && !e.GATEHOUSE_OIDC_SHARED_REDIRECT) {
    problems.push('GATEHOUSE_OIDC_REDIRECT_MODE: cannot be shared when GATEHOUSE_OIDC_SHARED_REDIRECT=false');
  }
  if (e.GATEHOUSE_SECRET_KEYS) {
    const err = checkSecretKeySpec(e.GATEHOUSE_SECRET_KEYS);
    if (err) problems.push(`GATEHOUSE_SECRET_KEYS: ${err}`);
  }
  if (problems.length) throw new ConfigError(problems);

  const trusted = new Set<string>([base.origin, ...(e.GATEHOUSE_TRUSTED_ORIGINS ?? [])]);
  return {
    env: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    baseUrl,
    baseOrigin: base.origin,
    secureCookies: base.protocol === 'https:',
    databaseUrl: e.DATABASE_URL,
    dbStatementTimeoutMs: e.GATEHOUSE_DB_STATEMENT_TIMEOUT_MS,
    dbConnectTimeoutMs: e.GATEHOUSE_DB_CONNECT_TIMEOUT_MS,
    secretKeys: e.GATEHOUSE_SECRET_KEYS ?? null,
    secretKeyFile: e.GATEHOUSE_SECRET_KEY_FILE,
    trustedOrigins: [...trusted],
    dnsServers: e.GATEHOUSE_DNS_SERVERS ?? null,
    trustedProxies: e.GATEHOUSE_TRUSTED_PROXIES ?? [],
    allowLoopbackIdps: e.GATEHOUSE_ALLOW_LOOPBACK_IDPS,
    logoutSender: e.GATEHOUSE_LOGOUT_SENDER,
    sessionCacheSize: e.GATEHOUSE_SESSION_CACHE_SIZE,
    idpTokenRefresher: e.GATEHOUSE_IDP_TOKEN_REFRESHER,
    housekeeping: e.GATEHOUSE_HOUSEKEEPING,
    housekeepingIntervalMs: e.GATEHOUSE_HOUSEKEEPING_INTERVAL,
    shutdownTimeoutMs: e.GATEHOUSE_SHUTDOWN_TIMEOUT,
    smtpUrl: e.SMTP_URL ?? null,
    emailFrom: e.GATEHOUSE_EMAIL_FROM,
    redisUrl: e.REDIS_URL ?? null,
    oidcRedirectMode: e.GATEHOUSE_OIDC_REDIRECT_MODE,
    oidcSharedRedirect: e.GATEHOUSE_OIDC_SHARED_REDIRECT,
    tokenAudience: e.GATEHOUSE_TOKEN_AUDIENCE ?? baseUrl,
    keyActivationDelayMs: e.GATEHOUSE_KEY_ACTIVATION_DELAY,
    accessTokenTtlMs: e.GATEHOUSE_ACCESS_TOKEN_TTL,
    refreshTokenTtlMs: e.GATEHOUSE_REFRESH_TOKEN_TTL,
    logLevel: e.GATEHOUSE_LOG_LEVEL,
    metrics: e.GATEHOUSE_METRICS,
    metricsToken: e.GATEHOUSE_METRICS_TOKEN ?? null,
  };
}

/** Returns a problem description, or null when `kid:base64key,…` is well formed (32-byte keys, unique kids). */
export function checkSecretKeySpec(spec: string): string | null {
  const seen = new Set<string>();
  const entries = spec.split(',').map((s) => s.trim()).filter(Boolean);
  if (entries.length === 0) return 'must list at least one kid:base64key';
  for (const entry of entries) {
    const idx = entry.indexOf(':');
    if (idx <= 0) return `entry ${seen.size + 1} must be kid:base64key`;
    const kid = entry.slice(0, idx);
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(kid)) return `key id "${kid}" must be 1-32 characters of A-Z a-z 0-9 _ -`;
    if (seen.has(kid)) return `key id "${kid}" appears twice`;
    seen.add(kid);
    const key = Buffer.from(entry.slice(idx + 1), 'base64');
    if (key.length !== 32) return `key "${kid}" must decode to 32 bytes (got ${key.length})`;
  }
  return null;
}
