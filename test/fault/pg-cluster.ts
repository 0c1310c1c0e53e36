import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A PostgreSQL cluster of the fault test's own: initdb into a temporary directory, trust auth,
 * listening only on 127.0.0.1 at a free port, its unix socket inside that directory. Restarting or
 * stopping it disturbs nobody else on the machine (the shared server on 5432 is never touched).
 *
 * initdb refuses to run as root: as root every PostgreSQL binary runs through
 * `runuser -u postgres --`, in a directory owned by postgres.
 */

/** The directory of the newest PostgreSQL installation's binaries (initdb, pg_ctl), or null. */
export function postgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  // Elsewhere (Homebrew, a distribution that puts them on PATH).
  const found = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  const initdb = found.status === 0 ? found.stdout.trim() : '';
  return initdb && existsSync(initdb.replace(/initdb$/, 'pg_ctl')) ? initdb.replace(/\/initdb$/, '') : null;
}

/** Why a cluster of our own cannot be made here (null when it can). */
export function clusterUnavailableReason(): string | null {
  if (!postgresBinDir()) return 'no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH';
  if (process.getuid?.() === 0) {
    const user = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    if (user.status !== 0) return 'running as root and there is no postgres user to run initdb as';
    if (spawnSync('sh', ['-c', 'command -v runuser'], { encoding: 'utf8' }).status !== 0) return 'running as root without runuser';
  }
  return null;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface OwnCluster {
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  port: number;
  dir: string;
  /** `pg_ctl restart -m fast` (resolves once the server accepts connections again); does not block the event loop. */
  restart(): Promise<void>;
  /** A longer outage: `pg_ctl stop -m fast`, then `start()` brings it back (same options). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stop (immediate) and delete the directory; safe to call twice. */
  destroy(): void;
  /** The server's log, for a failure message. */
  log(): string;
}

export async function startOwnCluster(): Promise<OwnCluster> {
  const bin = postgresBinDir();
  if (!bin) throw new Error(clusterUnavailableReason() ?? 'no PostgreSQL binaries');
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'gh-fault-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  let uid = -1;
  let gid = -1;
  if (asRoot) {
    uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const run = (tool: string, args: string[]) => {
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
    const res = spawnSync(cmd, argv, { encoding: 'utf8', cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' }, timeout: 120_000 });
    if (res.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed (${res.status ?? res.signal}): ${res.stderr || res.stdout}\n${existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-3000) : ''}`);
    return res.stdout;
  };
  const runAsync = (tool: string, args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args];
      const child = spawn(cmd, argv, { cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${tool} ${args.join(' ')} failed (${code}): ${out}`))));
    });
  let port = await freePort();
  while (port === 5432) port = await freePort();
  // The cluster exists from here on: whatever fails next, destroy() removes it.
  let destroyed = false;
  const destroy = () => {
    if (destroyed) return;
    destroyed = true;
    if (existsSync(join(data, 'postmaster.pid'))) {
      try {
        run('pg_ctl', ['-D', data, 'stop', '-m', 'immediate', '-w', '-t', '30']);
      } catch {
        // already down
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Also when the test runner dies without running afterAll.
  process.once('exit', destroy);
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    "-c listen_addresses='127.0.0.1'",
    '-c max_connections=100',
    '-c shared_buffers=32MB',
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
  ].join(' ');
  try {
    run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
    run('pg_ctl', ['-D', data, '-o', options, '-l', logFile, '-w', '-t', '60', 'start']);
  } catch (e) {
    destroy();
    throw e;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    restart() {
      // The options given at start are kept in postmaster.opts and reused by restart.
      return runAsync('pg_ctl', ['-D', data, '-l', logFile, '-m', 'fast', '-w', '-t', '60', 'restart']);
    },
    stop() {
      return runAsync('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
    },
    start() {
      return runAsync('pg_ctl', ['-D', data, '-o', options, '-l', logFile, '-w', '-t', '60', 'start']);
    },
    destroy() {
      process.off('exit', destroy);
      destroy();
    },
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
  };
}
