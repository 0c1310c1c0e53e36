import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { resealAll } from './crypto/sealed-columns.js';
import { migrateToLatest, openDatabase } from './db/database.js';
import { createLogger } from './logger.js';
import { runKeysCommand } from './tokens/keys-cli.js';
import { runClientsCommand } from './oidc-provider/clients/cli.js';
import { buildGatehouse, installProcessGuards, loadKeyRing, shutDown, startServer } from './server.js';

const USAGE = `Usage: gatehouse <command>

  start                                   migrate, then serve HTTP (PORT, HOST)
  migrate                                 apply pending database migrations
  admin create --email E --password P     create (or promote) a platform superadmin
  keys rotate [--json]                    add a token signing key: published now, signs after GATEHOUSE_KEY_ACTIVATION_DELAY; removes expired keys
  keys list [--json]                      every signing key: kid, state (pending/active/retired), createdAt, activatesAt, publishedUntil
  secrets rotate                          re-encrypt stored secrets under the first key of GATEHOUSE_SECRET_KEYS
  clients create --name N --redirect-uri U [--redirect-uri U2 …] [--post-logout-redirect-uri U]
          [--backchannel-logout-uri U] [--auth-method M] [--first-party]
                                          register an OpenID Provider client (prints its id and secret once)
  clients list                            list the OpenID Provider clients
  clients delete <clientId>               delete a client

Configuration comes from environment variables; see the README.`;

/** After GATEHOUSE_SHUTDOWN_TIMEOUT, how long the jobs and the database get to close before the process exits anyway. */
const SHUTDOWN_BACKSTOP_MS = 15_000;

async function main(argv: string[]): Promise<number> {
  const [command, sub, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 78; // EX_CONFIG
    }
    throw e;
  }
  const logger = createLogger(config);

  switch (command) {
    case 'start': {
      installProcessGuards(logger);
      const { server, gatehouse } = await startServer(config, { logger });
      // Graceful: drain in-flight requests (up to GATEHOUSE_SHUTDOWN_TIMEOUT), stop the jobs, close
      // the database, exit 0. A second signal cuts the wait short; a close that hangs is cut at the backstop.
      let stopping: ReturnType<typeof shutDown> | null = null;
      const stop = (signal: string) => {
        if (stopping) {
          logger.warn({ signal }, 'second signal: closing the remaining connections now');
          stopping.forceNow();
          return;
        }
        logger.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down: draining in-flight requests');
        stopping = shutDown(gatehouse, server, config.shutdownTimeoutMs);
        setTimeout(() => {
          logger.error('shutdown did not finish in time; exiting');
          process.exit(1);
        }, config.shutdownTimeoutMs + SHUTDOWN_BACKSTOP_MS).unref();
        stopping.done.then(
          ({ timedOut }) => {
            logger.info({ timedOut }, timedOut ? 'stopped; connections still busy at the deadline were closed' : 'stopped');
            process.exit(0);
          },
          (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
      return -1; // keep running
    }
    case 'migrate': {
      const handle = await openDatabase(config.databaseUrl);
      try {
        const applied = await migrateToLatest(handle.db);
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
      } finally {
        await handle.close();
      }
      return 0;
    }
    case 'admin': {
      const { values } = parseArgs({ args: rest, options: { email: { type: 'string' }, password: { type: 'string' }, name: { type: 'string' } } });
      if (sub !== 'create' || !values.email || !values.password) {
        console.error('Usage: gatehouse admin create --email E --password P [--name N]');
        return 2;
      }
      if (values.password.length < 8) {
        console.error('--password must be at least 8 characters');
        return 2;
      }
      const gh = await buildGatehouse(config, { logger });
      try {
        const { user, created, revoked } = await gh.services.accounts.createSuperadmin({ email: values.email, password: values.password, ...(values.name ? { name: values.name } : {}) });
        console.log(created
          ? `created superadmin ${user.email} (${user.id})`
          : `promoted superadmin ${user.email} (${user.id}); revoked ${revoked.sessions} session(s) and ${revoked.apiKeys} API key(s) it had`);
      } finally {
        await gh.close();
      }
      return 0;
    }
    case 'keys':
      return runKeysCommand([sub ?? '', ...rest], config, logger);
    case 'secrets': {
      if (sub !== 'rotate') {
        console.error('Usage: gatehouse secrets rotate');
        return 2;
      }
      const keyring = loadKeyRing(config, logger);
      const handle = await openDatabase(config.databaseUrl);
      try {
        await migrateToLatest(handle.db);
        const result = await handle.db.transaction().execute((tx) => resealAll(tx, keyring));
        console.log(`re-encrypted ${result.rewritten} secret(s) under key "${keyring.currentKid}"; ${result.alreadyCurrent} already current`);
      } finally {
        await handle.close();
      }
      return 0;
    }
    case 'clients':
      return runClientsCommand(sub, rest, () => buildGatehouse(config, { logger }));
    default:
      console.error(`Unknown command "${command}".\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  },
);
