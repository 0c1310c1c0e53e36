import pg from 'pg';
import type { Logger } from '../logger.js';

export interface NotificationListener {
  /** Whether the LISTEN connection is up now (notifications sent meanwhile reach us). */
  connected(): boolean;
  stop(): Promise<void>;
}

/**
 * A dedicated PostgreSQL connection that LISTENs on one channel (outside the pool: a pooled
 * connection would be lent to queries). When it drops (restart, failover, an ended backend) it
 * reports `onDown`, reconnects with a back-off (1 s, doubling to 15 s), and reports `onUp` once
 * it listens again — whatever was notified while it was away is lost, so the caller must treat
 * the gap as "anything may have changed".
 */
export function listenForNotifications(options: {
  url: string;
  channel: string;
  applicationName: string;
  connectTimeoutMs: number;
  logger: Logger;
  onNotification: (payload: string) => void;
  onUp: () => void;
  onDown: () => void;
}): NotificationListener {
  let client: pg.Client | null = null;
  let up = false;
  let stopped = false;
  let retryMs = 1000;
  let timer: NodeJS.Timeout | null = null;

  const down = (err?: Error) => {
    if (!up && !client) return;
    const wasUp = up;
    up = false;
    const dead = client;
    client = null;
    dead?.removeAllListeners();
    dead?.on('error', () => {});
    void dead?.end().catch(() => {});
    if (wasUp) {
      options.onDown();
      if (!stopped) options.logger.warn({ err: err ? { message: err.message } : undefined, channel: options.channel }, 'notification connection lost; reconnecting');
    }
    schedule();
  };

  const schedule = () => {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = null;
      void connect();
    }, retryMs);
    timer.unref();
    retryMs = Math.min(retryMs * 2, 15_000);
  };

  async function connect() {
    if (stopped) return;
    const c = new pg.Client({ connectionString: options.url, application_name: options.applicationName, connectionTimeoutMillis: options.connectTimeoutMs, keepAlive: true });
    client = c;
    c.on('error', (err) => down(err));
    c.on('end', () => down());
    c.on('notification', (msg) => {
      if (msg.channel === options.channel && msg.payload !== undefined) options.onNotification(msg.payload);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${pg.escapeIdentifier(options.channel)}`);
      if (stopped || client !== c) return void c.end().catch(() => {});
      up = true;
      retryMs = 1000;
      options.onUp();
    } catch (err) {
      if (client === c) {
        client = null;
        c.removeAllListeners();
        c.on('error', () => {});
        void c.end().catch(() => {});
        schedule();
      }
      if (!stopped) options.logger.debug({ err, channel: options.channel }, 'notification connection failed; retrying');
    }
  }

  void connect();
  return {
    connected: () => up,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      const c = client;
      client = null;
      up = false;
      if (c) {
        c.removeAllListeners();
        c.on('error', () => {});
        await c.end().catch(() => {});
      }
    },
  };
}
