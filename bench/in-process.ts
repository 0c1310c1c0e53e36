import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { loadConfig, type Config } from '../src/config.js';
import { buildGatehouse, type Gatehouse } from '../src/server.js';

/**
 * An in-process Gatehouse for a benchmark, on a fresh database: a SQLite file in a temporary
 * directory, or a fresh PostgreSQL schema. `close()` removes it again.
 */
export async function benchGatehouse(databaseUrl: string | null, name: string): Promise<{ gh: Gatehouse; config: Config; close(): Promise<void> }> {
  const dir = mkdtempSync(join(os.tmpdir(), `gh-bench-${name}-`));
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl ?? `sqlite:${dir}/bench.db`,
    GATEHOUSE_SECRET_KEYS: `bench:${randomBytes(32).toString('base64')}`,
    GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true',
    GATEHOUSE_LOG_LEVEL: 'silent',
  });
  const schema = databaseUrl ? `bench_${name}_${randomBytes(4).toString('hex')}` : undefined;
  const gh = await buildGatehouse(config, { logger: pino({ level: 'silent' }), ...(schema ? { schema } : {}) });
  return {
    gh,
    config,
    async close() {
      await gh.close();
      rmSync(dir, { recursive: true, force: true });
      if (schema && databaseUrl) {
        const c = new pg.Client({ connectionString: databaseUrl });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await c.end();
      }
    },
  };
}
