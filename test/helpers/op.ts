import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
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
  const base = `http://127.0.0.1:${port}`;
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

/** Register a client through the admin API (as the superadmin); returns its id and secret. */
export async function registerClient(gh: TestGatehouse, admin: TestUser, body: Record<string, unknown>): Promise<{ clientId: string; clientSecret: string | null }> {
  const res = await gh.request('POST', '/api/admin/clients', { as: admin, body });
  if (res.status !== 201) throw new Error(`client registration failed: ${res.status} ${res.text}`);
  return { clientId: res.body.data.clientId, clientSecret: res.body.data.clientSecret ?? null };
}

/** Make `user` a platform superadmin (the CLI's job; done in the database here). */
export async function makeSuperadmin(gh: TestGatehouse, user: TestUser): Promise<void> {
  await gh.deps.db.updateTable('users').set({ is_superadmin: 1 }).where('id', '=', user.id).execute();
}

/**
 * A browser without JavaScript: a cookie jar per origin and manual redirects, so each hop of a
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

  async fetch(url: string | URL, init: { method?: string; form?: Record<string, string>; origin?: string } = {}): Promise<Response> {
    const u = new URL(url);
    const headers: Record<string, string> = {};
    const cookie = this.cookieHeader(u);
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers.origin = init.origin ?? u.origin;
      body = new URLSearchParams(init.form).toString();
    }
    const res = await fetch(u, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
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
  async follow(url: string | URL, stopAt: string, first?: { form?: Record<string, string> }): Promise<{ url: URL; res: Response }> {
    let current = new URL(url);
    let res = await this.fetch(current, first ?? {});
    for (let hops = 0; hops < 20; hops++) {
      const location = res.headers.get('location');
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

/** Run the authorization request in `browser` and return the callback URL the app receives. */
export async function authorize(browser: Browser, config: oidc.Configuration, params: Record<string, string>, redirectUri: string): Promise<{ callback: URL; verifier: string; state: string; nonce: string }> {
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
  const { url: last, res } = await browser.follow(url, redirectUri);
  if (!last.href.startsWith(redirectUri)) throw new Error(`the flow stopped at ${last.href} (${res.status}): ${(await res.text()).slice(0, 300)}`);
  return { callback: last, verifier, state, nonce };
}
