import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { listenLoopback } from './op.js';

/**
 * An app (RP of Gatehouse's OpenID Provider) on loopback that receives back-channel logout
 * tokens and validates each exactly as Back-Channel Logout 1.0 §2.6 says an RP must, against
 * Gatehouse's published JWKS. `mode` lets a test take it down ('down': 503, 'hang': never
 * answers) and bring it back ('ok').
 */
export const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

export interface Received { ok: boolean; reason?: string; claims?: JWTPayload; typ?: string; at: number }

export interface BackchannelRp {
  url: string;
  received: Received[];
  server: Server;
  mode: 'ok' | 'down' | 'hang';
  /** Requests seen (answered or not), valid or not. */
  hits: number;
  /** Answer every request still hanging (with 503) and close the server. */
  close(): Promise<void>;
}

/** `opts.jwksUrl`: where to fetch Gatehouse's keys (read when the first token arrives), when not at the issuer. */
export async function startBackchannelRp(issuer: string, clientId: () => string, opts: { jwksUrl?: () => string } = {}): Promise<BackchannelRp> {
  let jwks: ReturnType<typeof createRemoteJWKSet> | null = null;
  const keys = () => (jwks ??= createRemoteJWKSet(new URL(opts.jwksUrl?.() ?? `${issuer}/.well-known/jwks.json`)));
  const hanging: ServerResponse[] = [];
  const rp: BackchannelRp = {
    url: '',
    received: [],
    server: createServer((req, res) => void handle(req, res)),
    mode: 'ok',
    hits: 0,
    async close() {
      for (const res of hanging.splice(0)) if (!res.writableEnded) res.writeHead(503).end();
      rp.server.closeAllConnections();
      await new Promise<void>((resolve) => rp.server.close(() => resolve()));
    },
  };

  async function check(req: IncomingMessage, body: string): Promise<Omit<Received, 'at'>> {
    if (req.headers['content-type'] !== 'application/x-www-form-urlencoded') return { ok: false, reason: 'content-type' };
    const token = new URLSearchParams(body).get('logout_token');
    if (!token) return { ok: false, reason: 'no logout_token' };
    const header = decodeProtectedHeader(token);
    // 2.6 step 3: validate iss, aud, iat, exp and the signature (as an ID token).
    const { payload } = await jwtVerify(token, keys(), { issuer, audience: clientId(), algorithms: ['ES256'], typ: 'logout+jwt', maxTokenAge: '2m' });
    // step 4: sub and/or sid; step 5: events with the back-channel logout member; step 6: no nonce.
    if (!payload.sub && !payload.sid) return { ok: false, reason: 'no sub or sid' };
    const events = payload.events as Record<string, unknown> | undefined;
    if (!events || typeof events[BACKCHANNEL_EVENT] !== 'object') return { ok: false, reason: 'events' };
    if ('nonce' in payload) return { ok: false, reason: 'nonce present' };
    if (!payload.jti) return { ok: false, reason: 'no jti' };
    if ((payload.exp ?? 0) - (payload.iat ?? 0) > 120) return { ok: false, reason: 'lives longer than 2 minutes' };
    return { ok: true, claims: payload, typ: String(header.typ) };
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    rp.hits++;
    let body = '';
    for await (const chunk of req) body += String(chunk);
    if (rp.mode === 'hang') {
      hanging.push(res);
      return;
    }
    if (rp.mode === 'down') {
      res.writeHead(503).end();
      return;
    }
    const result = await check(req, body).catch((e: Error) => ({ ok: false, reason: e.message }));
    rp.received.push({ ...result, at: Date.now() });
    res.writeHead(result.ok ? 200 : 400, { 'cache-control': 'no-store' }).end();
  }

  const port = await listenLoopback(rp.server);
  rp.url = `http://127.0.0.1:${port}/backchannel`;
  return rp;
}
