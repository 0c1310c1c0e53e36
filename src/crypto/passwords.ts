import { hash, verify } from '@node-rs/argon2';

/** OWASP Password Storage Cheat Sheet minimum for argon2id: m=19 MiB, t=2, p=1. */
export const ARGON2_OPTIONS = { algorithm: 2 /* Algorithm.Argon2id (a const enum) */, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hashed: string, password: string): Promise<boolean>;
  /** Spend the same time as a real verification, for unknown users. Always false. */
  verifyDummy(password: string): Promise<false>;
}

export function createPasswordHasher(options: { memoryCost?: number; timeCost?: number } = {}): PasswordHasher {
  const opts = { ...ARGON2_OPTIONS, ...options };
  let dummy: Promise<string> | null = null;
  return {
    hash: (password) => hash(password, opts),
    async verify(hashed, password) {
      try {
        return await verify(hashed, password);
      } catch {
        return false;
      }
    },
    async verifyDummy(password) {
      dummy ??= hash('gatehouse-dummy-password', opts);
      await verify(await dummy, password).catch(() => false);
      return false;
    },
  };
}
