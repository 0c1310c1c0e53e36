import type { Migration } from 'kysely';
import * as m0001 from './0001_initial.js';
import * as m0002 from './0002_retired_slugs.js';
import * as m0003 from './0003_tokens_and_provider.js';
import * as m0004 from './0004_logout.js';
import * as m0005 from './0005_idp_tokens.js';
import * as m0006 from './0006_dashboard.js';
import * as m0007 from './0007_housekeeping.js';

/** Forward-only migrations, in order. Add a file and a line; never edit a shipped migration. */
export const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_retired_slugs': m0002,
  '0003_tokens_and_provider': m0003,
  '0004_logout': m0004,
  '0005_idp_tokens': m0005,
  '0006_dashboard': m0006,
  '0007_housekeeping': m0007,
};
