import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import { pino } from 'pino';
import { accessLog, requestId } from '../src/http/middleware.js';
const v = process.env.VARIANT!;
const app = new Hono<any>();
const body = { success: true, status: 200, code: 'OK', message: 'OK', data: { user: { id: '01KAS0000000000000000000000', email: 'measured@bench.example', name: 'Measured User', emailVerified: false }, session: { id: '01KAS0000000000000000000001', authMethod: 'password', connectionId: null, organizationId: null, mfa: 'none', createdAt: new Date().toISOString(), expiresAt: new Date().toISOString() }, memberships: [] } };
if (v.includes('rid')) { app.use('*', requestId() as any); app.use('*', accessLog(pino({ level: 'silent' })) as any); }
if (v.includes('sec')) app.use('*', secureHeaders({ crossOriginResourcePolicy: false, crossOriginOpenerPolicy: false }));
if (v.includes('limit')) app.use('*', bodyLimit({ maxSize: 1024 * 1024 }));
app.get('/x', (c) => c.json(v.includes('big') ? body : { ok: true }));
const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => process.stdout.write(`BENCH_READY ${JSON.stringify({ port: info.port })}\n`));
process.stdin.on('end', () => { s.close(); process.exit(0); }); process.stdin.resume();
