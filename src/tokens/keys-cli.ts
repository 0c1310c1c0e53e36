import { parseArgs } from 'node:util';
import { systemClock } from '../clock.js';
import type { Config } from '../config.js';
import { migrateToLatest, openDatabase } from '../db/database.js';
import type { Logger } from '../logger.js';
import { loadKeyRing } from '../server.js';
import { createSigningKeys, type SigningKeyView } from './signing-keys.js';

const KEYS_USAGE = 'Usage: gatehouse keys rotate [--json] | gatehouse keys list [--json]';

/**
 * `gatehouse keys rotate|list` (SPEC §1, §8). Works on the database directly, as `secrets rotate`
 * does: the key ring needs the database, the secret key ring (GATEHOUSE_SECRET_KEYS, which seals
 * the private keys) and GATEHOUSE_KEY_ACTIVATION_DELAY — not the HTTP app.
 *
 * Returns the exit code; writes its answer to `out` (stdout) and problems to `err` (stderr).
 */
export async function runKeysCommand(
  args: string[],
  config: Config,
  logger: Logger,
  io: { out: (line: string) => void; err: (line: string) => void } = { out: (l) => console.log(l), err: (l) => console.error(l) },
): Promise<number> {
  const [sub, ...rest] = args;
  let json = false;
  try {
    json = parseArgs({ args: rest, options: { json: { type: 'boolean' } }, strict: true }).values.json ?? false;
  } catch (e) {
    io.err(`${e instanceof Error ? e.message : String(e)}\n${KEYS_USAGE}`);
    return 2;
  }
  if (sub !== 'rotate' && sub !== 'list') {
    io.err(KEYS_USAGE);
    return 2;
  }
  const keyring = loadKeyRing(config, logger);
  const handle = await openDatabase(config.databaseUrl, { connectTimeoutMs: config.dbConnectTimeoutMs });
  try {
    await migrateToLatest(handle.db);
    const keys = createSigningKeys({ db: handle.db, database: handle, clock: systemClock, keyring, config, logger });
    if (sub === 'rotate') {
      const added = await keys.rotate();
      if (json) {
        io.out(JSON.stringify(added));
      } else {
        const signs = added.state === 'active' ? 'signs now (the ring was empty)' : `signs from ${added.activatesAt}`;
        io.out(`added signing key ${added.kid}: published now, ${signs}`);
        io.out(`kid: ${added.kid}`);
        io.out(`activatesAt: ${added.activatesAt}`);
        io.out(added.removed.length ? `removed ${added.removed.length} expired key(s): ${added.removed.join(', ')}` : 'removed 0 expired key(s)');
      }
      return 0;
    }
    const list = await keys.list();
    if (json) io.out(JSON.stringify(list));
    else io.out(list.length ? table(list, new Date()) : 'no signing keys yet (the first instance to start creates one)');
    return 0;
  } finally {
    await handle.close();
  }
}

/** One line per key, columns aligned; a retired key past its published time is marked `(expired)`. */
function table(keys: SigningKeyView[], now: Date): string {
  const nowIso = now.toISOString();
  const rows = [
    ['kid', 'state', 'createdAt', 'activatesAt', 'publishedUntil'],
    ...keys.map((k) => [
      k.kid,
      k.state,
      k.createdAt,
      k.activatesAt,
      k.publishedUntil === null ? '-' : k.publishedUntil <= nowIso ? `${k.publishedUntil} (expired)` : k.publishedUntil,
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}
