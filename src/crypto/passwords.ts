import { availableParallelism } from 'node:os';
import { hash, verify } from '@node-rs/argon2';

/** OWASP Password Storage Cheat Sheet minimum for argon2id: m=19 MiB, t=2, p=1. */
export const ARGON2_OPTIONS = { algorithm: 2 /* Algorithm.Argon2id (a const enum) */, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hashed: string, password: string): Promise<boolean>;
  /** Spend the same time as a real verification, for unknown users. Always false. */
  verifyDummy(password: string): Promise<false>;
}

/**
 * How many argon2 computations run at once by default: one per core, and always one thread of
 * libuv's pool (UV_THREADPOOL_SIZE, 4 unless set) left for the rest of its work (DNS lookups of
 * IdP hosts, file reads). @node-rs/argon2 runs on that pool; with more computations than cores
 * they only take turns on the cores, each evicting the others' 19 MiB from the caches, so fewer
 * finish per second (bench/RESULTS.md, password sign-in), and a burst of sign-ins would hold every
 * pool thread.
 */
export function defaultArgon2Concurrency(env: NodeJS.ProcessEnv = process.env, cores = availableParallelism()): number {
  const pool = Number(env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(1, Math.min(cores, pool - 1));
}

/** At most `limit` of the given tasks running at once; the others wait their turn, first come first served. */
export function createConcurrencyLimit(limit: number) {
  if (!Number.isInteger(limit) || limit < 1) throw new Error('the concurrency limit must be a positive integer');
  let running = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
  return {
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (running < limit) running++;
      else await new Promise<void>((resolve) => waiting.push(resolve)); // the slot is handed over by release
      try {
        return await task();
      } finally {
        release();
      }
    },
    /** Tasks running now and waiting (tests). */
    get running() {
      return running;
    },
    get waiting() {
      return waiting.length;
    },
  };
}

export function createPasswordHasher(options: { memoryCost?: number; timeCost?: number; concurrency?: number } = {}): PasswordHasher {
  const { concurrency, ...costs } = options;
  const opts = { ...ARGON2_OPTIONS, ...costs };
  const slots = createConcurrencyLimit(concurrency ?? defaultArgon2Concurrency());
  let dummy: Promise<string> | null = null;
  const verifyIn = (hashed: string, password: string) => slots.run(() => verify(hashed, password));
  return {
    hash: (password) => slots.run(() => hash(password, opts)),
    async verify(hashed, password) {
      try {
        return await verifyIn(hashed, password);
      } catch {
        return false;
      }
    },
    async verifyDummy(password) {
      dummy ??= slots.run(() => hash('gatehouse-dummy-password', opts));
      await verifyIn(await dummy, password).catch(() => false);
      return false;
    },
  };
}
