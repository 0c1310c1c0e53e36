import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { OP_ROUTES } from '../../src/oidc-provider/urls.js';
import { requestListener } from '../../src/server.js';
import { createTestGatehouse, type TestGatehouse, type TestOptions, type TestUser } from './app.js';

/**
 * A Gatehouse served over real HTTP on loopback, for the OpenID Provider's relying-party tests
 * (openid-client talks to it as to any OP). Its base URL is the address it listens on, so the
 * issuer, the endpoints and the cookies all agree.
 */
export interface OpServer {
  gh: TestGatehouse;
  base: string;
  server: Server;
  close(): Promise<void>;
}

export async function listenLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

export async function startOpServer(options: TestOptions = {}): Promise<OpServer> {
  const server = createServer();
  const port = await listenLoopback(server);
  return serveOp(server, `http://127.0.0.1:${port}`, options);
}

/**
 * A Gatehouse listening on its own loopback port but whose base URL is `base` — the address of a
 * proxy in front of it (multi-instance tests: several instances, one issuer). `address` is where
 * this instance itself listens, for the proxy to forward to.
 */
export async function startOpServerBehind(base: string, options: TestOptions = {}): Promise<OpServer & { address: string }> {
  const server = createServer();
  const port = await listenLoopback(server);
  return { ...(await serveOp(server, base, options)), address: `http://127.0.0.1:${port}` };
}

async function serveOp(server: Server, base: string, options: TestOptions): Promise<OpServer> {
  const gh = await createTestGatehouse({
    ...options,
    env: { GATEHOUSE_BASE_URL: base, GATEHOUSE_TRUSTED_ORIGINS: 'http://localhost:3000', GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true', ...options.env },
  });
  server.on('request', requestListener(gh));
  return {
    gh,
    base,
    server,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await gh.destroy();
    },
  };
}

/**
 * A tiny HTTP proxy on loopback in front of several instances: each request goes to the next
 * instance in turn (`route = 'round-robin'`) or to the one named by `route`. Method, path, headers
 * (Host included) and body are passed on untouched; `served` records which instance answered.
 */
export interface InstanceProxy {
  base: string;
  targets: Record<string, string>;
  route: string;
  served: Array<{ instance: string; method: string; path: string }>;
  close(): Promise<void>;
}

export async function startInstanceProxy(): Promise<InstanceProxy> {
  const server = createServer();
  const port = await listenLoopback(server);
  let turn = 0;
  const proxy: InstanceProxy = {
    base: `http://127.0.0.1:${port}`,
    targets: {},
    route: 'round-robin',
    served: [],
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('request', (req, res) => {
    const names = Object.keys(proxy.targets);
    const instance = proxy.route === 'round-robin' ? names[turn++ % names.length]! : proxy.route;
    const target = new URL(proxy.targets[instance]!);
    proxy.served.push({ instance, method: req.method ?? 'GET', path: (req.url ?? '/').split('?')[0]! });
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', (err) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${err.message}`);
    });
    req.pipe(upstream);
  });
  return proxy;
}

/** Register a client through the admin API (as the superadmin); returns its id and secret. */
export async function registerClient(gh: TestGatehouse, admin: TestUser, body: Record<string, unknown>): Promise<{ clientId: string; clientSecret: string | null }> {
  const res = await gh.request('POST', '/api/admin/clients', { as: admin, body });
  if (res.status !== 201) throw new Error(`client registration failed: ${res.status} ${res.text}`);
  return { clientId: res.body.data.clientId, clientSecret: res.body.data.clientSecret ?? null };
}

/** Make `user` a platform superadmin (the CLI's job; done in the database here). */
export async function makeSuperadmin(gh: TestGatehouse, user: TestUser): Promise<void> {
  await gh.deps.db.updateTable('users').set({ is_superadmin: 1 }).where('id', '=', user.id).execute();
  gh.deps.sessionCache.clear(); // written around the services: the session cache cannot know
}

const AUTO_SUBMIT = /document\.forms\[0\]\.submit\(\)/;
const unescapeHtml = (v: string) => v.replace(/&(#x?[0-9a-f]+|amp|quot|lt|gt|#39);/gi, (_m, e: string) =>
  e === 'amp' ? '&' : e === 'quot' ? '"' : e === 'lt' ? '<' : e === 'gt' ? '>' : String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)));

/**
 * A browser without JavaScript (except that it submits oidc-provider's self-submitting forms): a cookie jar per origin and manual redirects, so each hop of a
 * flow can be looked at. Good enough for the provider's redirects, interaction pages and forms.
 */
export class Browser {
  readonly jar = new Map<string, Map<string, string>>();

  setCookie(origin: string, name: string, value: string) {
    let m = this.jar.get(origin);
    if (!m) this.jar.set(origin, (m = new Map()));
    m.set(name, value);
  }

  cookieHeader(url: URL): string | undefined {
    const m = this.jar.get(url.origin);
    return m && m.size ? [...m].map(([k, v]) => `${k}=${v}`).join('; ') : undefined;
  }

  /** The redirects and pages of the last `follow`, in order (where each answer came from). */
  hops: Array<{ url: URL; status: number; location: string | null }> = [];

  async fetch(url: string | URL, init: { method?: string; form?: Record<string, string>; json?: unknown; origin?: string } = {}): Promise<Response> {
    const u = new URL(url);
    const headers: Record<string, string> = {};
    const cookie = this.cookieHeader(u);
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    } else if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    // A browser sends Origin with every POST (the page's origin, or the attacker's).
    if (body !== undefined || init.origin) headers.origin = init.origin ?? u.origin;
    const res = await fetch(u, { method: init.method ?? (body !== undefined ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const m = /^([^=]+)=([^;]*)/.exec(line);
      if (!m) continue;
      if (/expires=Thu, 01 Jan 1970/i.test(line) || m[2] === '') this.jar.get(u.origin)?.delete(m[1]!);
      else this.setCookie(u.origin, m[1]!, m[2]!);
    }
    return res;
  }

  /**
   * Follow redirects from `url` until one leaves for `stopAt` (the app's redirect URI) or a page
   * answers; returns the last response and the URL it came from.
   */
  async follow(url: string | URL, stopAt: string, first?: { form?: Record<string, string>; origin?: string }): Promise<{ url: URL; res: Response }> {
    let current = new URL(url);
    let res = await this.fetch(current, first ?? {});
    this.hops = [];
    for (let hops = 0; hops < 20; hops++) {
      const location = res.headers.get('location');
      this.hops.push({ url: current, status: res.status, location });
      if (res.status === 200 && !location) {
        // oidc-provider's self-submitting form (its form_post page): a browser with JavaScript posts it.
        const html = await res.clone().text();
        const form = AUTO_SUBMIT.test(html) ? /<form method="post" action="([^"]+)">([\s\S]*?)<\/form>/.exec(html) : null;
        if (form) {
          const fields = Object.fromEntries([...form[2]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)].map((m) => [m[1]!, unescapeHtml(m[2]!)]));
          current = new URL(unescapeHtml(form[1]!), current);
          res = await this.fetch(current, { form: fields });
          continue;
        }
      }
      if (res.status < 300 || res.status >= 400 || !location) return { url: current, res };
      current = new URL(location, current);
      if (current.href.startsWith(stopAt)) return { url: current, res };
      res = await this.fetch(current);
    }
    throw new Error('too many redirects');
  }
}

/** A browser signed in to Gatehouse as `user` (its session cookie on the Gatehouse origin). */
export function browserOf(op: OpServer, user: TestUser): Browser {
  const b = new Browser();
  b.setCookie(op.base, 'gatehouse_session', user.cookie);
  return b;
}

/** openid-client's view of the provider, for a confidential (secret) or public client. */
export async function rpConfig(op: OpServer, clientId: string, secret: string | null, auth?: oidc.ClientAuth): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(op.base), clientId, secret ?? undefined, auth ?? (secret ? oidc.ClientSecretBasic(secret) : oidc.None()), {
    execute: [oidc.allowInsecureRequests],
  });
}

/** An authorization request URL with fresh PKCE, state and nonce (scope `openid email profile` unless given). */
export async function authorizationRequest(config: oidc.Configuration, params: Record<string, string>, redirectUri: string): Promise<{ url: URL; verifier: string; state: string; nonce: string }> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...params,
  });
  return { url, verifier, state, nonce };
}

/** Run the authorization request in `browser` and return the callback URL the app receives. */
export async function authorize(browser: Browser, config: oidc.Configuration, params: Record<string, string>, redirectUri: string): Promise<{ callback: URL; verifier: string; state: string; nonce: string }> {
  const { url, verifier, state, nonce } = await authorizationRequest(config, params, redirectUri);
  const { url: last, res } = await browser.follow(url, redirectUri);
  if (!last.href.startsWith(redirectUri)) throw new Error(`the flow stopped at ${last.href} (${res.status}): ${(await res.text()).slice(0, 300)}`);
  return { callback: last, verifier, state, nonce };
}

/** A raw request to the token endpoint (for what openid-client refuses to send). */
export async function tokenRequest(op: OpServer, form: Record<string, string>, basic?: { id: string; secret: string }): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (basic) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(basic.id)}:${encodeURIComponent(basic.secret)}`).toString('base64')}`;
  const res = await fetch(`${op.base}${OP_ROUTES.token}`, { method: 'POST', headers, body: new URLSearchParams(form).toString() });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The HTTP status UserInfo answers for an access token (200, or 401 once it is no good). */
export async function userinfoStatus(op: OpServer, accessToken: string): Promise<number> {
  const res = await fetch(`${op.base}${OP_ROUTES.userinfo}`, { headers: { authorization: `Bearer ${accessToken}` } });
  await res.arrayBuffer();
  return res.status;
}

/** The OAuth error code of a failed openid-client call (`invalid_grant` …), or what was thrown. */
export async function oauthError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    const err = e as { error?: string; code?: string; message?: string };
    return err.error ?? err.code ?? String(err.message);
  }
  return 'no error';
}
