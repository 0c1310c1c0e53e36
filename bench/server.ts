/**
 * The server side of the benchmark, run as a child process by bench/run.ts so that the load
 * generator (autocannon, in the parent) does not share an event loop with the server.
 *
 *   BENCH_TARGET=bare       a bare Hono route, GET /bare, served by @hono/node-server
 *   BENCH_TARGET=gatehouse  Gatehouse (startServer from src/server.ts) on the database in
 *                           DATABASE_URL, populated with BENCH_USERS users, each with one session
 *                           and one API key; the last of them (the measured user) is created
 *                           through the real HTTP API (sign-up, then POST /api/user/api-keys).
 *
 * Listens on 127.0.0.1, port 0 (random). When ready it writes one line to stdout:
 *   BENCH_READY {"port":…, …}
 * and serves until its stdin closes or it receives SIGTERM/SIGINT.
 */
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { sql } from 'kysely';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { randomToken, sha256 } from '../src/crypto/tokens.js';
import type { Db } from '../src/db/database.js';
import type { ApiKeyRow, SessionRow, UserRow } from '../src/db/schema.js';
import { newId } from '../src/ids.js';
import { startServer } from '../src/server.js';
import { SESSION_COOKIE } from '../src/sessions/service.js';

const HOST = '127.0.0.1';

export interface ReadyInfo {
  target: 'bare' | 'gatehouse';
  port: number;
  engine?: 'sqlite' | 'postgres';
  counts?: { users: number; sessions: number; apiKeys: number };
  populateMs?: number;
  userId?: string;
  cookie?: string;
  apiKey?: string;
}

function ready(info: ReadyInfo) {
  process.stdout.write(`BENCH_READY ${JSON.stringify(info)}\n`);
}

function onShutdown(fn: () => Promise<void>) {
  let done = false;
  const stop = () => {
    if (done) return;
    done = true;
    fn().then(
      () => process.exit(0),
      (e) => {
        console.error(e);
        process.exit(1);
      },
    );
  };
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function listeningPort(server: ServerType): number {
  const addr = server.address() as AddressInfo | string | null;
  if (!addr || typeof addr === 'string' || addr.address !== HOST) {
    throw new Error(`expected to listen on ${HOST}, got ${JSON.stringify(addr)}`);
  }
  return addr.port;
}

async function closeServer(server: ServerType) {
  const s = server as ServerType & { closeAllConnections?: () => void };
  await new Promise<void>((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections?.();
  });
}

async function runBare() {
  const app = new Hono().get('/bare', (c) => c.json({ ok: true }));
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: HOST }, () => resolve(s));
  });
  onShutdown(() => closeServer(server));
  ready({ target: 'bare', port: listeningPort(server) });
}

/**
 * Bulk-insert `count` users, one session and one API key each, in one transaction, in batches.
 * The password hash is a placeholder string (these accounts never sign in); tokens and keys are
 * random and stored as SHA-256, exactly as the services store them.
 */
async function populate(db: Db, count: number, batchSize = 1000): Promise<void> {
  const now = new Date();
  const nowIso = now.toISOString();
  const idle = new Date(now.getTime() + 7 * 24 * 3600_000).toISOString();
  const absolute = new Date(now.getTime() + 30 * 24 * 3600_000).toISOString();
  await db.transaction().execute(async (tx) => {
    for (let start = 0; start < count; start += batchSize) {
      const n = Math.min(batchSize, count - start);
      const users: UserRow[] = [];
      const sessions: SessionRow[] = [];
      const keys: ApiKeyRow[] = [];
      for (let i = 0; i < n; i++) {
        const k = start + i;
        const userId = newId();
        users.push({
          id: userId,
          email: `bench-${k}@bench.example`,
          name: `Bench User ${k}`,
          password_hash: '$bench$not-a-real-hash',
          email_verified: 1,
          is_superadmin: 0,
          created_at: nowIso,
          updated_at: nowIso,
        });
        sessions.push({
          id: newId(),
          token_hash: sha256(randomToken(32, 'gs_')),
          user_id: userId,
          auth_method: 'password',
          connection_id: null,
          organization_id: null,
          mfa_state: 'none',
          mfa_completed_at: null,
          ip: '127.0.0.1',
          user_agent: 'gatehouse-bench',
          created_at: nowIso,
          last_seen_at: nowIso,
          expires_at: idle,
          absolute_expires_at: absolute,
          revoked_at: null,
          identity_id: null,
          idp_session_id: null,
          idp_logout_enc: null,
        });
        const key = randomToken(24, 'gk_');
        keys.push({
          id: newId(),
          user_id: userId,
          name: 'bench',
          key_hash: sha256(key),
          key_prefix: key.slice(0, 10),
          scopes: null,
          organization_id: null,
          expires_at: null,
          last_used_at: null,
          created_at: nowIso,
          revoked_at: null,
        });
      }
      await tx.insertInto('users').values(users).execute();
      await tx.insertInto('sessions').values(sessions).execute();
      await tx.insertInto('api_keys').values(keys).execute();
    }
  });
}

/**
 * Let the database settle after the bulk load, so that its deferred work does not land in the
 * measurements: statistics for the planner, hint bits and the visibility map (PostgreSQL VACUUM),
 * and the dirty pages written out (CHECKPOINT; the SQLite WAL folded into the main file).
 */
async function settle(db: Db, engine: 'sqlite' | 'postgres'): Promise<void> {
  if (engine === 'sqlite') {
    await sql`ANALYZE`.execute(db);
    await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db);
    return;
  }
  await sql`VACUUM ANALYZE users, sessions, api_keys`.execute(db);
  try {
    await sql`CHECKPOINT`.execute(db);
  } catch {
    // CHECKPOINT needs superuser or pg_checkpoint; without it the background writer catches up on its own.
  }
}

async function call(base: string, method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return { res, json: JSON.parse(text) as { data: Record<string, any> } };
}

async function runGatehouse() {
  const users = Number(process.env.BENCH_USERS ?? '1000');
  if (!Number.isInteger(users) || users < 1) throw new Error('BENCH_USERS must be a positive integer');
  const schema = process.env.BENCH_SCHEMA || undefined;
  // The environment comes from bench/run.ts (DATABASE_URL, GATEHOUSE_SECRET_KEYS, NODE_ENV=test,
  // GATEHOUSE_LOG_LEVEL=silent); HOST and PORT are pinned here: loopback, random port.
  const config = loadConfig({ ...process.env, HOST, PORT: '0' });
  const { gatehouse, server } = await startServer(config, { logger: pino({ level: 'silent' }), ...(schema ? { schema } : {}) });
  onShutdown(async () => {
    await closeServer(server);
    await gatehouse.close();
  });
  const port = listeningPort(server);
  const base = `http://${HOST}:${port}`;
  const db = gatehouse.deps.db;

  // users − 1 rows in bulk; the measured user makes `users`.
  const t0 = performance.now();
  await populate(db, users - 1);
  await settle(db, gatehouse.deps.database.engine);
  const populateMs = Math.round(performance.now() - t0);

  // The measured user: the real sign-up (argon2, session through the session service), then an
  // API key through the real endpoint (cookie-authenticated write, so it carries a trusted Origin).
  const signUp = await call(base, 'POST', '/api/auth/sign-up/email', {}, {
    email: 'measured@bench.example',
    password: 'correct horse battery staple',
    name: 'Measured User',
  });
  const setCookie = signUp.res.headers.get('set-cookie') ?? '';
  const cookie = new RegExp(`${SESSION_COOKIE}=([^;]+)`).exec(setCookie)?.[1];
  if (!cookie) throw new Error('sign-up set no session cookie');
  const userId = signUp.json.data.user.id as string;
  const created = await call(base, 'POST', '/api/user/api-keys', {
    cookie: `${SESSION_COOKIE}=${cookie}`,
    origin: config.baseOrigin,
  }, { name: 'bench' });
  const apiKey = created.json.data.key as string;
  if (!apiKey?.startsWith('gk_')) throw new Error('API key creation returned no gk_ key');

  const count = async (table: 'users' | 'sessions' | 'api_keys') =>
    Number((await db.selectFrom(table).select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()).n);
  const counts = { users: await count('users'), sessions: await count('sessions'), apiKeys: await count('api_keys') };

  ready({ target: 'gatehouse', port, engine: gatehouse.deps.database.engine, counts, populateMs, userId, cookie, apiKey });
}

const target = process.env.BENCH_TARGET;
try {
  if (target === 'bare') await runBare();
  else if (target === 'gatehouse') await runGatehouse();
  else throw new Error(`BENCH_TARGET must be bare or gatehouse (got ${target})`);
} catch (e) {
  console.error('bench server failed:', e);
  process.exit(1);
}
