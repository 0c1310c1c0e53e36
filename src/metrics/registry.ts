import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { DatabaseHandle } from '../db/database.js';
import type { SsoProtocol } from '../db/schema.js';
import type { LimitName } from '../http/rate-limit.js';
import type { Logger } from '../logger.js';
import type { SsoFailureReason } from '../sso/errors.js';
import { registerDatabasePoolGauges, registerOutboxGauges } from './collectors.js';
import { defineMetrics, type SignInMethod, type SignInResult } from './definitions.js';

/** One answered HTTP request; `route` is a pattern or a fixed name, never the raw path. */
export interface HttpObservation {
  method: string;
  route: string;
  status: number;
  seconds: number;
}

/** An instance's metrics: its own registry and the few ways the code reports to it. */
export interface Metrics {
  /** GATEHOUSE_METRICS: whether /metrics is served (and the HTTP middleware, default metrics and collectors run). */
  readonly enabled: boolean;
  readonly registry: Registry;
  request(observation: HttpObservation): void;
  signIn(method: SignInMethod, result: SignInResult): void;
  ssoFailure(protocol: SsoProtocol, reason: SsoFailureReason): void;
  ssoLoginStartFailure(protocol: SsoProtocol, reason: SsoFailureReason): void;
  rateLimitRefused(limit: LimitName): void;
}

export interface MetricsDeps {
  config: Pick<Config, 'metrics'>;
  database: DatabaseHandle;
  clock: Clock;
  logger: Logger;
}

/**
 * The metrics of one Gatehouse instance, on a Registry of its own (DESIGN.md: no globals), so two
 * instances in one process neither share counts nor collide registering a name. The process
 * metrics of prom-client's collectDefaultMetrics, the database pool and the outbox depth are
 * collected only when metrics are served.
 */
export function createMetrics(deps: MetricsDeps): Metrics {
  const registry = new Registry();
  const m = defineMetrics(registry);
  if (deps.config.metrics) {
    collectDefaultMetrics({ register: registry });
    registerDatabasePoolGauges(registry, deps.database);
    registerOutboxGauges(registry, { db: deps.database.db, clock: deps.clock, logger: deps.logger });
  }
  return {
    enabled: deps.config.metrics,
    registry,
    request({ method, route, status, seconds }) {
      m.httpRequests.inc({ method, route, status });
      m.httpDuration.observe({ method, route }, seconds);
    },
    signIn: (method, result) => m.signIns.inc({ method, result }),
    ssoFailure: (protocol, reason) => m.ssoFailures.inc({ protocol, reason }),
    ssoLoginStartFailure: (protocol, reason) => m.ssoLoginStartFailures.inc({ protocol, reason }),
    rateLimitRefused: (limit) => m.rateLimitRefusals.inc({ limit }),
  };
}
