import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createTestGatehouse, testKeySpec } from '../helpers/app.js';
import { cliArgs } from '../helpers/cli.js';
import { until } from '../helpers/postgres.js';

/**
 * Graceful shutdown of `gatehouse start` (docs/operations.md "Stopping"): on SIGTERM the instance
 * stops taking connections, closes idle keep-alive ones at once, lets a request in flight finish
 * (up to GATEHOUSE_SHUTDOWN_TIMEOUT), closes the database and exits 0. The request in flight is
 * one whose body the test sends slowly, so no production code needs a hook for it.
 */

describe('/readyz while draining', () => {
  it('answers 503 SERVICE_UNAVAILABLE with Retry-After once the instance drains, so a load balancer stops sending', async () => {
    const gh = await createTestGatehouse();
    try {
      expect((await gh.request('GET', '/readyz')).status).toBe(200);
      gh.deps.lifecycle.drain();
      const res = await gh.request('GET', '/readyz');
      expect(res.status).toBe(503);
      expect(res.body.code).toBe('SERVICE_UNAVAILABLE');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await gh.request('GET', '/healthz')).status).toBe(200); // the process is still up
    } finally {
      await gh.destroy();
    }
  });
});

interface Instance {
  child: ChildProcess;
  port: number;
  output(): string;
  exit: Promise<number | null>;
}

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

async function start(env: Record<string, string> = {}): Promise<Instance> {
  let out = '';
  const child = spawn(process.execPath, cliArgs('start'), {
    cwd: mkdtempSync(join(tmpdir(), 'gh-shutdown-')),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', HOST: '127.0.0.1', GATEHOUSE_SECRET_KEYS: testKeySpec(), GATEHOUSE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let exitCode: number | null | undefined;
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve((exitCode = code))));
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  await until(() => /"listen":"127\.0\.0\.1:(\d+)"/.test(out) || exitCode !== undefined, 'gatehouse start to listen', 2400);
  const port = Number(/"listen":"127\.0\.0\.1:(\d+)"/.exec(out)?.[1]);
  if (!port) throw new Error(`gatehouse start did not come up:\n${out}`);
  return { child, port, output: () => out, exit };
}

/** A raw connection and everything it received, and whether the server closed it. */
function rawConnection(port: number): Promise<{ socket: Socket; received(): string; closed(): boolean }> {
  return new Promise((resolve, reject) => {
    let data = '';
    let closed = false;
    const socket = connect(port, '127.0.0.1', () => resolve({ socket, received: () => data, closed: () => closed }));
    socket.on('data', (c: Buffer) => (data += c.toString()));
    socket.on('close', () => (closed = true));
    socket.once('error', reject);
  });
}

const SIGN_UP = JSON.stringify({ email: 'drain@shutdown.test', password: 'correct horse battery' });

/** Start a sign-up whose body arrives slowly: its headers and half its body now. Resolves once the server took the request (its `100 Continue`). */
async function slowSignUp(port: number) {
  const conn = await rawConnection(port);
  conn.socket.write(
    'POST /api/auth/sign-up/email HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(SIGN_UP)}\r\nExpect: 100-continue\r\n\r\n`,
  );
  await until(() => conn.received().includes('100 Continue'), 'the server to take the request');
  conn.socket.write(SIGN_UP.slice(0, 20));
  return {
    ...conn,
    finish: () => conn.socket.write(SIGN_UP.slice(20)),
    /** The final status code (after the 100 Continue). */
    status: () => Number(/HTTP\/1\.1 (\d{3}) (?!Continue)/.exec(conn.received())?.[1] ?? 0),
  };
}

const refused = (port: number) =>
  new Promise<string>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });

describe('gatehouse start on SIGTERM', () => {
  afterEach(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  it('refuses new connections, closes idle keep-alive ones at once, lets the request in flight finish with its normal answer, and exits 0', async () => {
    const gh = await start({ GATEHOUSE_SHUTDOWN_TIMEOUT: '30s' });
    // An idle keep-alive connection: one request answered, the connection left open.
    const idle = await rawConnection(gh.port);
    idle.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await until(() => idle.received().includes('"status":"up"'), 'the health answer');
    const inFlight = await slowSignUp(gh.port);

    gh.child.kill('SIGTERM');
    await until(() => gh.output().includes('shutting down'), 'the shutdown to start');
    // The idle connection is closed while the request is still in flight (not at the deadline).
    await until(() => idle.closed(), 'the idle keep-alive connection to be closed');
    expect(inFlight.closed()).toBe(false);
    expect(await refused(gh.port)).toBe('ECONNREFUSED');

    inFlight.finish();
    await until(() => inFlight.closed(), 'the in-flight answer');
    expect(inFlight.status()).toBe(201);
    expect(inFlight.received()).toContain('"email":"drain@shutdown.test"');

    expect(await gh.exit).toBe(0);
    expect(gh.output()).toContain('"timedOut":false');
  });

  it('closes a request still in flight at GATEHOUSE_SHUTDOWN_TIMEOUT and exits 0', async () => {
    const gh = await start({ GATEHOUSE_SHUTDOWN_TIMEOUT: '1s' });
    const stuck = await slowSignUp(gh.port); // its body never ends
    gh.child.kill('SIGTERM');
    expect(await gh.exit).toBe(0);
    await until(() => stuck.closed(), 'the stuck connection to be closed');
    expect(stuck.status()).toBe(0); // no answer: it was cut at the deadline
    expect(gh.output()).toContain('"timedOut":true');
  });
});
