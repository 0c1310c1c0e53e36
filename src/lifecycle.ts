/**
 * Where an instance is in its life, for what it tells the outside. While it drains (a SIGTERM or
 * SIGINT arrived: in-flight requests finish, nothing new is taken) `/readyz` answers 503, so a
 * load balancer stops sending, and every answer closes its connection (server.ts).
 */
export interface Lifecycle {
  readonly draining: boolean;
  /** Start draining (for good: an instance never comes back from it). */
  drain(): void;
}

export function createLifecycle(): Lifecycle {
  let draining = false;
  return {
    get draining() {
      return draining;
    },
    drain() {
      draining = true;
    },
  };
}
