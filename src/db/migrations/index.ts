import type { Migration } from 'kysely';
import * as m0001 from './0001_initial.js';

/** Forward-only migrations, in order. Add a file and a line; never edit a shipped migration. */
export const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
};
