import type { Executor } from '../db/database.js';

/**
 * Cluster-wide leases of periodic jobs (`job_leases`): whoever holds a job's lease runs it, and
 * keeps it by renewing before it runs out; when the holder dies, the lease runs out and another
 * instance takes it. Returns whether `holder` holds the lease until `until` now.
 */
export async function acquireJobLease(db: Executor, name: string, holder: string, nowIso: string, untilIso: string): Promise<boolean> {
  await db.insertInto('job_leases').values({ name, holder, expires_at: untilIso }).onConflict((oc) => oc.column('name').doNothing()).execute();
  const res = await db
    .updateTable('job_leases')
    .set({ holder, expires_at: untilIso })
    .where('name', '=', name)
    .where((eb) => eb.or([eb('holder', '=', holder), eb('expires_at', '<=', nowIso)]))
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Give a lease up (on a clean stop), so another instance takes the job at once. */
export async function releaseJobLease(db: Executor, name: string, holder: string): Promise<void> {
  await db.deleteFrom('job_leases').where('name', '=', name).where('holder', '=', holder).execute();
}

