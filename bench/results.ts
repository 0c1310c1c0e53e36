import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';

/**
 * The Node flags `npm start` gives the process (package.json's start script, the words before
 * bin/gatehouse.js): the benchmarks that run Gatehouse as a server run it with the same flags.
 */
export const START_NODE_FLAGS: readonly string[] = (() => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } };
  const words = pkg.scripts.start.split(/\s+/);
  return words.slice(1, words.indexOf('bin/gatehouse.js')).filter((w) => w.startsWith('--'));
})();

/** A positive integer setting of a benchmark from the environment, or `fallback`. */
export const intEnv = (name: string, fallback: number): number => {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
};

/** Where every benchmark records its figures. */
export const RESULTS_FILE = new URL('./RESULTS.md', import.meta.url);

/** Replace (or append) the section between `<!-- bench:<name>:start -->` and `<!-- bench:<name>:end -->`. */
export function writeResultsSection(name: string, lines: readonly string[]): void {
  const begin = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const block = `${begin}\n${lines.join('\n')}\n${end}`;
  const text = readFileSync(RESULTS_FILE, 'utf8');
  writeFileSync(RESULTS_FILE, text.includes(begin) ? text.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), () => block) : `${text.trimEnd()}\n\n${block}\n`);
}

/** "Machine: <cpu>, N cores, X GiB RAM, Node vX (platform arch)". */
export function machineLine(): string {
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown CPU';
  return `- Machine: ${cpu}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version} (${process.platform} ${process.arch})`;
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** The resident set of a process in MiB (Linux /proc). */
export function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (!kb) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) / 1024;
}
