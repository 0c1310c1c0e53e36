import { PROXY_ERROR_HEADER } from './lb-proxy.js';

/**
 * The fault test's HTTP client: every answer is sorted into what the test allows — the expected
 * success, a clean retryable 503 (SPEC §3 envelope, `Retry-After`, nothing internal), a failure at
 * the load balancer (the instance died under the request) — or a finding (anything else: a 500,
 * a stack trace, a wrong status, a request that never ends).
 */

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- envelope JSON
  body: any;
  cookies: Record<string, string>;
}

/** A clean 503: the database is away; the client may retry after Retry-After. */
export class Unavailable extends Error {
  constructor(readonly step: string, readonly retryAfterSeconds: number) {
    super(`${step}: 503`);
  }
}
/** The request was lost between the load balancer and a dying instance. */
export class ProxyFailure extends Error {
  constructor(readonly step: string, detail: string, readonly startedAt: number, readonly endedAt: number) {
    super(`${step}: ${detail}`);
  }
}
/** Anything the test does not allow. */
export class Finding extends Error {}

const STACK = /\n\s+at .+:\d+:\d+|\bat (?:async )?[\w.<>]+ \(.*:\d+:\d+\)|node_modules\/|\/src\/[\w/-]+\.ts/;

/** Seconds of a 503's Retry-After (checked > 0 by `check`). */
export function problemsOf503(a: Answer): string[] {
  const problems: string[] = [];
  const retryAfter = Number(a.headers.get('retry-after'));
  if (!(retryAfter > 0)) problems.push(`no Retry-After (${a.headers.get('retry-after')})`);
  const b = a.body;
  if (!b || b.success !== false || b.status !== 503 || typeof b.code !== 'string' || typeof b.message !== 'string') problems.push('not the SPEC error envelope');
  if (b && 'details' in b) problems.push('a 5xx with details');
  if (/terminat|57P0|ECONN|timeout|statement|postgres|kysely|pg-pool/i.test(a.text)) problems.push('internal detail in the body');
  return problems;
}

export interface ClientOptions {
  /** Where requests go (the load balancer, or one instance directly). */
  base: string;
  /** Origin of cookie-authenticated writes (the public base URL). */
  origin: string;
  timeoutMs?: number;
}

export interface SendOptions {
  json?: unknown;
  form?: string;
  cookies?: Record<string, string>;
  headers?: Record<string, string>;
  /** Send the trusted Origin (cookie-authenticated writes). Default: for non-GET with cookies. */
  origin?: string | null;
  /** The client address the load balancer reports (X-Forwarded-For); varied so rate limits stay out of the way. */
  ip?: string;
}

let ipCounter = 0;
/** A fresh client address in 10.0.0.0/8 (each "browser" its own). */
export const nextIp = () => {
  ipCounter++;
  return `10.${(ipCounter >> 16) & 255}.${(ipCounter >> 8) & 255}.${(ipCounter & 255) || 1}`;
};

export function createClient(opts: ClientOptions) {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  /** Send one request; throws ProxyFailure / Finding (timeouts, stack traces, 5xx other than a clean 503), Unavailable on a clean 503. */
  async function send(step: string, method: string, path: string, o: SendOptions = {}): Promise<Answer> {
    const headers: Record<string, string> = { accept: 'application/json', ...o.headers };
    if (o.ip) headers['x-forwarded-for'] = o.ip;
    let body: string | undefined;
    if (o.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(o.json);
    } else if (o.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = o.form;
    }
    const jar = Object.entries(o.cookies ?? {});
    if (jar.length) headers.cookie = jar.map(([k, v]) => `${k}=${v}`).join('; ');
    const origin = o.origin === undefined ? (method !== 'GET' && jar.length ? opts.origin : null) : o.origin;
    if (origin) headers.origin = origin;
    let res: Response;
    let text: string;
    const startedAt = Date.now();
    try {
      res = await fetch(`${opts.base}${path}`, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
      text = await res.text();
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      if (err.name === 'TimeoutError') throw new Finding(`${step}: ${method} ${path} did not answer within ${timeoutMs} ms (a hung request)`);
      // The connection to the load balancer was cut while the answer was streaming: the instance died.
      throw new ProxyFailure(step, `connection cut (${err.cause?.code ?? err.cause?.message ?? err.message})`, startedAt, Date.now());
    }
    if (res.status === 502 && res.headers.get(PROXY_ERROR_HEADER)) throw new ProxyFailure(step, `502 from the load balancer (${res.headers.get(PROXY_ERROR_HEADER)})`, startedAt, Date.now());
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    const cookies: Record<string, string> = {};
    for (const line of res.headers.getSetCookie()) {
      const m = /^([^=]+)=([^;]*)/.exec(line);
      if (m) cookies[m[1]!] = m[2]!;
    }
    const answer: Answer = { status: res.status, headers: res.headers, text, body: parsed, cookies };
    if (STACK.test(text)) throw new Finding(`${step}: ${method} ${path} answered ${res.status} with a stack trace or source path: ${text.slice(0, 400)}`);
    if (res.status === 503) {
      const problems = problemsOf503(answer);
      if (problems.length) throw new Finding(`${step}: ${method} ${path} answered an unclean 503 (${problems.join(', ')}): ${text.slice(0, 300)}`);
      throw new Unavailable(step, Number(answer.headers.get('retry-after')));
    }
    if (res.status >= 500) throw new Finding(`${step}: ${method} ${path} answered ${res.status}: ${text.slice(0, 400)}`);
    return answer;
  }

  /** `send`, then the status must be `expected`. */
  async function expectStatus(step: string, expected: number, method: string, path: string, o: SendOptions = {}): Promise<Answer> {
    const a = await send(step, method, path, o);
    if (a.status !== expected) throw new Finding(`${step}: ${method} ${path} answered ${a.status}, expected ${expected}: ${a.text.slice(0, 400)}`);
    return a;
  }

  return { send, expectStatus };
}

export type Client = ReturnType<typeof createClient>;
