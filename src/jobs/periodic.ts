import type { Logger } from '../logger.js';

/**
 * A job every instance runs on a timer: `run` once per `intervalMs` (measured from the end of the
 * last run, so runs never overlap), its failures logged and the next run scheduled anyway. The
 * timer does not keep the process alive; `stop()` waits for a run in progress.
 */
export function createPeriodicJob(options: {
  name: string;
  intervalMs: number;
  logger: Logger;
  run: () => Promise<unknown>;
}) {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let stopped = true;

  function schedule(delay: number) {
    if (stopped) return;
    timer = setTimeout(tick, delay);
    timer.unref();
  }

  function tick() {
    timer = null;
    running = options
      .run()
      .then(
        () => undefined,
        (err: unknown) => options.logger.warn({ err, job: options.name }, `${options.name} failed; trying again at the next run`),
      )
      .finally(() => {
        running = null;
        schedule(options.intervalMs);
      });
  }

  return {
    /** Start (the first run at once). */
    start() {
      if (!stopped) return;
      stopped = false;
      schedule(0);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
    },
  };
}

export type PeriodicJob = ReturnType<typeof createPeriodicJob>;
