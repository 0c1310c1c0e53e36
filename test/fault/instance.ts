import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cliArgs } from '../helpers/cli.js';

/**
 * One real Gatehouse process (`node bin/gatehouse.js start`) on a fixed port, which can be
 * SIGKILLed and started again on the same port (the load balancer's backend list does not change).
 * Its log lines are kept for the failure message and for the "no unhandled error" check.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/gatehouse.js');

/**
 * How to run `gatehouse start`: `node bin/gatehouse.js start` (the compiled dist/ since the build
 * step), unless dist/ is missing or older than a file of src/ — then the sources themselves
 * (`node --import tsx src/cli.ts start`), so the test never exercises stale code.
 */
export function gatehouseCommand(): { args: string[]; note: string | null } {
  const built = join(ROOT, 'dist/cli.js');
  const usesDist = /dist\/cli\.js/.test(readFileIfAny(BIN));
  if (!usesDist) return { args: [BIN, 'start'], note: null };
  const builtAt = existsSync(built) ? statSync(built).mtimeMs : 0;
  const newest = readdirSync(join(ROOT, 'src'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .reduce((max, e) => Math.max(max, statSync(join(e.parentPath, e.name)).mtimeMs), 0);
  if (builtAt >= newest) return { args: [BIN, 'start'], note: null };
  return { args: cliArgs('start'), note: `dist/ is ${builtAt ? 'older than src/' : 'missing'}: running the sources (node --import tsx src/cli.ts start); npm run build makes it run bin/gatehouse.js` };
}

function readFileIfAny(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export interface Instance {
  name: string;
  port: number;
  url: string;
  /** The current process (a new one after restart()). */
  child: ChildProcess | null;
  /** Every line of output of every run of this instance, prefixed with the run number. */
  output: string[];
  /** Exits nobody asked for (a crash): `run#: code/signal`. */
  unexpectedExits: string[];
  start(): Promise<void>;
  /** SIGKILL; resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (clean shutdown at the end of the test); removes the working directories of every run. */
  stop(): Promise<void>;
}

export function defineInstance(name: string, port: number, env: Record<string, string>): Instance {
  const command = gatehouseCommand();
  let run = 0;
  let expectingExit = false;
  const dirs: string[] = [];
  const inst: Instance = {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    child: null,
    output: [],
    unexpectedExits: [],
    async start() {
      run++;
      const thisRun = run;
      expectingExit = false;
      let buffered = '';
      let listening = false;
      let exited: string | null = null;
      const cwd = mkdtempSync(join(tmpdir(), `gh-fault-${name}-`));
      dirs.push(cwd);
      const child = spawn(process.execPath, command.args, {
        cwd,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: String(port), HOST: '127.0.0.1', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      inst.child = child;
      const onData = (chunk: Buffer) => {
        buffered += chunk.toString();
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          inst.output.push(`[${name}#${thisRun}] ${line}`);
          if (line.includes('"listen":"127.0.0.1:')) listening = true;
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('exit', (code, signal) => {
        exited = `${code ?? signal}`;
        if (!expectingExit) inst.unexpectedExits.push(`${name}#${thisRun}: ${exited}`);
      });
      for (let i = 0; i < 2400 && !listening && exited === null; i++) await new Promise((r) => setTimeout(r, 25));
      if (!listening) throw new Error(`${name} did not start listening (${exited === null ? 'still starting' : `exited ${exited}`}):\n${inst.output.slice(-40).join('\n')}`);
    },
    async kill() {
      const child = inst.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      expectingExit = true;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
    },
    async stop() {
      const child = inst.child;
      if (child && child.exitCode === null && child.signalCode === null) {
        expectingExit = true;
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await gone;
        clearTimeout(timer);
      }
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
  };
  return inst;
}
