import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { createSessionCheck } from './auth/session-check.js';
import { createApp } from './app.js';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import { createPasswordHasher, type PasswordHasher } from './crypto/passwords.js';
import { createKeyRing, loadOrCreateKeyFile, parseKeySpec, type KeyRing } from './crypto/keyring.js';
import { migrateToLatest, openDatabase, type DatabaseHandle } from './db/database.js';
import { isDatabaseUnavailable } from './db/faults.js';
import { createMailer, type Mailer } from './email/mailer.js';
import { createRateLimits, type LimitSettings } from './http/rate-limit.js';
import { createLogger, type Logger } from './logger.js';
import { createServices, type Deps, type Services } from './services.js';
import type { OutboxOptions } from './logout/outbox.js';
import type { IdpTokenSweepOptions } from './sso/idp-tokens/refresher.js';
import type { HousekeepingOptions } from './jobs/housekeeping.js';
import { createLifecycle } from './lifecycle.js';
import { createOutboundFetch, type OutboundFetch } from './sso/outbound.js';
import { isProviderPath } from './oidc-provider/urls.js';
import { databaseUnavailable } from './db/faults.js';
import { createSessionCache } from './sessions/cache.js';
import { startSessionCacheSync } from './sessions/cache-sync.js';
import { SESSION_CACHE_MAX_AGE_MS } from './sessions/service.js';
import { createMetrics } from './metrics/registry.js';
import { methodLabel, providerRouteLabel } from './metrics/http.js';

export interface BuildOptions {
  logger?: Logger;
  clock?: Clock;
  mailer?: Mailer;
  passwords?: PasswordHasher;
  rateLimits?: Partial<LimitSettings>;
  /** PostgreSQL schema to run in (test isolation). */
  schema?: string;
  outbound?: OutboundFetch;
  /** Skip migrations (the caller ran them). */
  migrate?: boolean;
  /** The back-channel logout sender's timing (tests); whether it runs is GATEHOUSE_LOGOUT_SENDER. */
  outbox?: OutboxOptions;
  /** The IdP token sweep's timing (tests); whether it runs is GATEHOUSE_IDP_TOKEN_REFRESHER. */
  idpTokenSweep?: IdpTokenSweepOptions;
  /** The housekeeping purge's batch sizes (tests); whether it runs is GATEHOUSE_HOUSEKEEPING. */
  housekeeping?: HousekeepingOptions;
}

export function loadKeyRing(config: Config, logger: Logger): KeyRing {
  if (config.secretKeys) return createKeyRing(parseKeySpec(config.secretKeys));
  const { spec, created } = loadOrCreateKeyFile(config.secretKeyFile);
  if (created) logger.warn({ file: config.secretKeyFile }, 'generated a development secret key file; set GATEHOUSE_SECRET_KEYS in production');
  return createKeyRing(parseKeySpec(spec));
}

/** Build every dependency from the validated config: database (migrated), key ring, services, app. */
export async function buildGatehouse(config: Config, options: BuildOptions = {}) {
  const logger = options.logger ?? createLogger(config);
  if (config.allowLoopbackIdps) logger.warn('GATEHOUSE_ALLOW_LOOPBACK_IDPS=true: IdP URLs may point at loopback and private addresses (local testing only)');
  const keyring = loadKeyRing(config, logger);
  // The pool drops a dead connection and connects afresh on the next query (SPEC §12).
  const onConnectionError = (err: Error) => logger.warn({ err: { message: err.message, code: (err as { code?: unknown }).code } }, 'database connection lost; the pool reconnects on the next query');
  const schema = options.schema ? { schema: options.schema } : {};
  const database: DatabaseHandle = await openDatabase(config.databaseUrl, {
    ...schema,
    statementTimeoutMs: config.dbStatementTimeoutMs,
    connectTimeoutMs: config.dbConnectTimeoutMs,
    onConnectionError,
  });
  if (options.migrate !== false) {
    // A migration may rightly run longer than a request's statement timeout: on PostgreSQL it
    // gets a connection of its own without one (SQLite's in-memory database is per connection).
    const migrator = database.engine === 'postgres' ? await openDatabase(config.databaseUrl, { ...schema, connectTimeoutMs: config.dbConnectTimeoutMs, onConnectionError }) : database;
    try {
      const applied = await migrateToLatest(migrator.db, database.schema);
      if (applied.length) logger.info({ applied }, 'migrations applied');
    } finally {
      if (migrator !== database) await migrator.close();
    }
  }
  // The guarded client for IdP URLs, unless the caller brings one; its pooled connections end with the instance.
  let outbound = options.outbound;
  let closeOutbound = () => {};
  if (!outbound) {
    const own = createOutboundFetch({
      allowLoopback: config.allowLoopbackIdps,
      // The resolved address stays out of every answer and audit entry (SPEC §12); the operator may see it.
      onRefused: (refused) => logger.debug({ ...refused }, 'outbound request refused: private or reserved address'),
    });
    outbound = own;
    closeOutbound = own.close;
  }
  const clock = options.clock ?? systemClock;
  const sessionCache = createSessionCache({ maxEntries: config.sessionCacheSize, maxAgeMs: SESSION_CACHE_MAX_AGE_MS, now: () => clock.now().getTime() });
  const cacheSync = await startSessionCacheSync(sessionCache, database, { url: config.databaseUrl, connectTimeoutMs: config.dbConnectTimeoutMs, logger });
  const metrics = createMetrics({ config, database, clock, logger });
  const deps: Deps = {
    config,
    database,
    db: database.db,
    clock,
    keyring,
    logger,
    passwords: options.passwords ?? createPasswordHasher(),
    rateLimits: createRateLimits(database, options.rateLimits, { onRefused: metrics.rateLimitRefused }),
    mailer: options.mailer ?? createMailer(config, logger),
    outbound,
    sessionCache,
    metrics,
    lifecycle: createLifecycle(),
  };
  const services: Services = createServices(deps, { ...(options.outbox ? { outbox: options.outbox } : {}), ...(options.idpTokenSweep ? { idpTokenSweep: options.idpTokenSweep } : {}), ...(options.housekeeping ? { housekeeping: options.housekeeping } : {}) });
  const app = createApp(deps, services);
  if (config.logoutSender) services.logoutOutbox.start();
  if (config.idpTokenRefresher) services.idpTokenRefresher.start();
  if (config.housekeeping) services.housekeeping.start();
  // Closing stops the background jobs (a delivery or refresh in flight finishes or its lease runs
  // out), waits for mail work still running after its answer (magic links, resets), then closes
  // the database.
  const close = async () => {
    await services.logoutOutbox.stop();
    await services.idpTokenRefresher.stop();
    await services.housekeeping.stop();
    await services.emailLinks.idle();
    await cacheSync.stop();
    closeOutbound();
    await database.close();
  };
  return { deps, services, app, close };
}

export type Gatehouse = Awaited<ReturnType<typeof buildGatehouse>>;

/**
 * The Node request listener of an instance: the OpenID Provider (a Koa app) answers its own paths
 * (oidc-provider/urls.ts), the Hono app everything else — its interaction pages included — but
 * the plain cookie session check, answered first by auth/session-check.ts when it can.
 */
export function requestListener(gatehouse: Pick<Gatehouse, 'app' | 'services' | 'deps'>): (req: IncomingMessage, res: ServerResponse) => void {
  const hono = getRequestListener(gatehouse.app.fetch);
  const { services, deps } = gatehouse;
  const sessionCheck = createSessionCheck({ sessions: services.sessions, organizations: services.organizations, metrics: deps.metrics, logger: deps.logger });
  return (req, res) => {
    // Draining (shutDown): the client is told not to send another request on this connection.
    if (gatehouse.deps.lifecycle.draining) res.setHeader('connection', 'close');
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (sessionCheck.accepts(req, path)) {
      void sessionCheck.handle(req, res).then(async (answered) => {
        if (!answered) await hono(req, res);
      });
      return;
    }
    if (!isProviderPath(path)) {
      void hono(req, res);
      return;
    }
    // The provider's requests skip the Hono middleware: they get their own access-log line.
    const start = performance.now();
    res.once('finish', () => {
      gatehouse.deps.metrics.request({ method: methodLabel(req.method ?? ''), route: providerRouteLabel(path), status: res.statusCode, seconds: (performance.now() - start) / 1000 });
      const level = res.statusCode >= 500 ? 'error' : 'info';
      if (gatehouse.deps.logger.isLevelEnabled(level)) {
        gatehouse.deps.logger[level]({ method: req.method, path, status: res.statusCode, ms: Math.round((performance.now() - start) * 10) / 10, via: 'openid-provider' }, 'request');
      }
    });
    gatehouse.services.openIdProvider.handle(req, res).catch((err: unknown) => {
      // Only what fails before the provider takes the request (reading the key ring) lands here.
      const unavailable = isDatabaseUnavailable(err);
      gatehouse.deps.logger[unavailable ? 'warn' : 'error']({ err, path }, 'OpenID Provider request failed');
      if (res.headersSent) return res.destroy();
      const body = unavailable
        ? { error: 'temporarily_unavailable', error_description: databaseUnavailable(err).message }
        : { error: 'server_error', error_description: 'Internal error' };
      res.writeHead(unavailable ? 503 : 500, { 'content-type': 'application/json', 'cache-control': 'no-store', ...(unavailable ? { 'retry-after': '5' } : {}) });
      res.end(JSON.stringify(body));
    });
  };
}

export async function startServer(config: Config, options: BuildOptions = {}): Promise<{ gatehouse: Gatehouse; server: Server; port: number }> {
  const gatehouse = await buildGatehouse(config, options);
  const { server, port } = await new Promise<{ server: Server; port: number }>((resolve) => {
    const s = createServer(requestListener(gatehouse));
    s.listen(config.port, config.host, () => {
      const address = s.address();
      resolve({ server: s, port: typeof address === 'object' && address ? address.port : config.port });
    });
  });
  gatehouse.deps.logger.info({ url: config.baseUrl, listen: `${config.host}:${port}`, database: gatehouse.deps.database.engine }, 'Gatehouse listening');
  return { gatehouse, server, port };
}

/** How often a draining server closes the connections that have gone idle (a keep-alive one whose last request just finished). */
const IDLE_SWEEP_MS = 100;

/**
 * Stop an instance gracefully (SIGTERM, SIGINT; docs/operations.md): `/readyz` answers 503 and
 * every answer closes its connection; the listening socket closes (a new connection is refused);
 * idle keep-alive connections close at once, and each busy one as soon as its request is answered.
 * In-flight requests get `timeoutMs` to finish; then their connections are closed. Then the
 * background jobs stop and the database closes. `forceNow` (a second signal) skips the wait.
 */
export function shutDown(gatehouse: Pick<Gatehouse, 'deps' | 'close'>, server: Server, timeoutMs: number): { done: Promise<{ timedOut: boolean }>; forceNow(): void } {
  gatehouse.deps.lifecycle.drain();
  let force = () => {};
  const deadline = new Promise<'deadline'>((resolve) => {
    const timer = setTimeout(() => resolve('deadline'), timeoutMs);
    force = () => {
      clearTimeout(timer);
      resolve('deadline');
    };
  });
  const closed = new Promise<'drained'>((resolve) => server.close(() => resolve('drained')));
  server.closeIdleConnections();
  const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
  const done = (async () => {
    const outcome = await Promise.race([closed, deadline]);
    clearInterval(sweep);
    force(); // the deadline timer is not needed any more
    if (outcome === 'deadline') {
      server.closeAllConnections();
      await closed;
    }
    await gatehouse.close();
    return { timedOut: outcome === 'deadline' };
  })();
  return { done, forceNow: () => force() };
}

/**
 * Process-level safety net of `gatehouse start` (SPEC §12: no instance ever exits on a lost
 * database connection). A connection-class error of the database driver that escaped every
 * handler — a driver event, a rejected promise nobody awaited — is logged and the process keeps
 * serving: the pool reconnects on the next query. Anything else still ends the process (exit
 * code 1), as Node would, because its state can no longer be trusted — a socket error of anything
 * but the database (SMTP, an IdP) and a 503 about something else included (src/db/faults.ts).
 */
export function installProcessGuards(logger: Logger, exit: (code: number) => void = (code) => process.exit(code)): () => void {
  const handle = (kind: 'uncaughtException' | 'unhandledRejection') => (err: unknown) => {
    if (isDatabaseUnavailable(err)) {
      logger.warn({ err, kind }, 'database connection error outside a request; still serving, the pool reconnects');
      return;
    }
    logger.fatal({ err, kind }, 'fatal error; exiting');
    exit(1);
  };
  const onException = handle('uncaughtException');
  const onRejection = handle('unhandledRejection');
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return () => {
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  };
}
