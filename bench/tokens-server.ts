/**
 * The server side of bench/tokens.ts, run as a child process so the load generator does not share
 * its event loop or its CPU account: Gatehouse (startServer) on the database in DATABASE_URL
 * (schema BENCH_SCHEMA on PostgreSQL), listening on 127.0.0.1 with a random port.
 *
 * The per-IP limit on the token endpoints (`token:ip`) is raised for the run: every request of the
 * benchmark comes from 127.0.0.1 (BENCH_RAISED_LIMITS, a comma list of per-IP limits, raises others
 * too: bench/password.ts raises `sign-in:ip`). Everything else is the production configuration.
 *
 * Protocol on stdio: one line `BENCH_READY {"port": …}` when listening; then each line `cpu` on
 * stdin is answered with `BENCH_CPU {"user": µs, "system": µs}` (process.cpuUsage of this whole
 * process, every thread: the event loop and libuv's pool); stdin closing stops the server.
 */
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { DEFAULT_LIMITS, type IpLimitName, type LimitSettings } from '../src/http/rate-limit.js';
import { startServer } from '../src/server.js';

const HOST = '127.0.0.1';
const config = loadConfig({ ...process.env, HOST, PORT: '0' });
const schema = process.env.BENCH_SCHEMA || undefined;
const isIpLimit = (name: string): name is IpLimitName => name.endsWith(':ip') && name in DEFAULT_LIMITS;
const raised = (process.env.BENCH_RAISED_LIMITS ?? 'token:ip').split(',').map((n) => n.trim()).filter(Boolean);
const rateLimits: Partial<LimitSettings> = {};
for (const name of raised) {
  if (!isIpLimit(name)) throw new Error(`BENCH_RAISED_LIMITS: ${name} is not a per-IP limit`);
  rateLimits[name] = { points: 100_000_000, duration: 60 };
}
const { gatehouse, server } = await startServer(config, {
  logger: pino({ level: 'silent' }),
  rateLimits,
  ...(schema ? { schema } : {}),
});
const addr = server.address() as AddressInfo;
if (addr.address !== HOST) throw new Error(`expected to listen on ${HOST}`);
process.stdout.write(`BENCH_READY ${JSON.stringify({ port: addr.port, engine: gatehouse.deps.database.engine })}\n`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    (server as typeof server & { closeAllConnections?: () => void }).closeAllConnections?.();
  });
  await gatehouse.close();
  process.exit(0);
}
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === 'cpu') process.stdout.write(`BENCH_CPU ${JSON.stringify(process.cpuUsage())}\n`);
});
lines.on('close', () => void stop());
process.on('SIGTERM', () => void stop());
