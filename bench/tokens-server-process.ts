import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/**
 * bench/tokens-server.ts as a child process, for the benchmarks that need a real Gatehouse on its
 * own process (tokens, Universal Logout): started, asked for its CPU time, stopped; and the
 * PostgreSQL schema a run used, dropped.
 */
const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, '..');

export interface BenchServer {
  port: number;
  base: string;
  /** The server's CPU seconds so far. */
  cpu(): Promise<number>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export function startBenchServer(env: Record<string, string>): Promise<BenchServer> {
  const child = spawn(process.execPath, [...(process.env.BENCH_SERVER_NODE_FLAGS ? process.env.BENCH_SERVER_NODE_FLAGS.split(' ') : []), '--import', 'tsx', join(BENCH_DIR, 'tokens-server.ts')], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  running.add(child);
  const exited = new Promise<void>((r) => child.once('exit', () => (running.delete(child), r())));
  const lines = createInterface({ input: child.stdout! });
  const cpuWaiters: Array<(s: number) => void> = [];
  return new Promise((resolveReady, reject) => {
    child.once('exit', (code) => reject(new Error(`the bench server exited (code ${code})`)));
    lines.on('line', (line) => {
      if (line.startsWith('BENCH_READY ')) {
        const { port } = JSON.parse(line.slice(12)) as { port: number };
        resolveReady({
          port,
          base: `http://127.0.0.1:${port}`,
          cpu: () =>
            new Promise((r) => {
              cpuWaiters.push(r);
              child.stdin!.write('cpu\n');
            }),
          async stop() {
            child.stdin!.end();
            const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
            await exited;
            clearTimeout(timer);
          },
        });
      } else if (line.startsWith('BENCH_CPU ')) {
        const u = JSON.parse(line.slice(10)) as { user: number; system: number };
        cpuWaiters.shift()?.((u.user + u.system) / 1e6);
      } else process.stderr.write(`[server] ${line}\n`);
    });
  });
}

/** Drop the schema a PostgreSQL run used. */
export async function dropBenchSchema(url: string, schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await c.end();
}
