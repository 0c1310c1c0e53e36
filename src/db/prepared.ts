import { createQueryId, type Compilable, type CompiledQuery, type Insertable, type QueryResult } from 'kysely';
import type { Executor } from './database.js';
import type { Database } from './schema.js';

/**
 * Queries built and compiled once, then only bound and run — for the statements on the hottest
 * paths (an SSO login, a session), where Kysely's building and compiling of the same query on
 * every request was a measurable share of the CPU (bench/RESULTS.md, SSO callback).
 *
 * A prepared query is written with the ordinary type-checked builder; each value to bind is a
 * named stand-in (`p.name`), which Kysely treats as an opaque value and so compiles to a bound
 * parameter. The compiled SQL is kept per dialect (SQLite `?`, PostgreSQL `$1` — one Gatehouse
 * may hold both in tests), and each run only maps the stand-ins to the given values. Constants
 * written in the builder (`limit(1)`, `sql.lit`) stay as compiled. The SQL text is the same
 * string object on every run, which also makes the SQLite statement cache's lookup cheap.
 *
 * What a prepared query cannot express: a shape that depends on the values (an `in` list, an
 * optional filter, a column present only sometimes) — such queries stay ordinary builder calls.
 */

/** The stand-in for the bound value `name`; never reaches a driver (planFor maps every one). */
class Slot {
  constructor(readonly name: string) {}
}

interface Plan {
  sql: string;
  query: CompiledQuery['query'];
  /** Per compiled parameter: the stand-in's name, or a constant compiled into the query. */
  bind: Array<string | { constant: unknown }>;
  /** Set when compiled for this run only: the id the plugins saw it under. */
  queryId?: CompiledQuery['queryId'];
}

const compilePlan = (build: () => Compilable<unknown>, forThisRun = false): Plan => {
  const compiled = build().compile();
  const bind = compiled.parameters.map((v) => (v instanceof Slot ? v.name : { constant: v }));
  return { sql: compiled.sql, query: compiled.query, bind, ...(forThisRun ? { queryId: compiled.queryId } : {}) };
};

/**
 * The compiled query of `build` for the dialect of `db`, kept in `plans` by the dialect's adapter
 * (one object per Kysely instance, shared by its transactions). An executor with plugins (tests
 * that watch or steer queries) compiles on every run, so that each plugin sees each query.
 */
function planFor(plans: WeakMap<object, Plan>, db: Executor, build: () => Compilable<unknown>): Plan {
  const executor = db.getExecutor();
  if (executor.plugins.length > 0) return compilePlan(build, true);
  let plan = plans.get(executor.adapter);
  if (!plan) plans.set(executor.adapter, (plan = compilePlan(build)));
  return plan;
}

function run<R>(db: Executor, plan: Plan, values: Record<string, unknown>): Promise<QueryResult<R>> {
  const parameters = plan.bind.map((b) => {
    if (typeof b !== 'string') return b.constant;
    const v = values[b];
    if (v === undefined) throw new Error(`prepared query: no value for ${b}`);
    return v;
  });
  return db.executeQuery<R>({ sql: plan.sql, query: plan.query, parameters, queryId: plan.queryId ?? createQueryId() });
}

export interface PreparedQuery<P, R> {
  /** The rows (a SELECT, or an UPDATE … RETURNING). */
  all(db: Executor, params: P): Promise<R[]>;
  first(db: Executor, params: P): Promise<R | undefined>;
  /** Rows changed (an UPDATE or DELETE without RETURNING). */
  changed(db: Executor, params: P): Promise<number>;
}

/**
 * `build(db, p)` is the query with `p.<name>` wherever a value is bound; the parameters' types
 * are P's. Every value of P must be given on each run (`undefined` is refused: use null).
 */
export function prepareQuery<P extends Record<string, unknown>, R>(build: (db: Executor, p: P) => Compilable<R>): PreparedQuery<P, R> {
  const plans = new WeakMap<object, Plan>();
  const stand = new Proxy({}, { get: (_target, name) => new Slot(String(name)) }) as P;
  const exec = (db: Executor, params: P) => run<R>(db, planFor(plans, db, () => build(db, stand)), params);
  return {
    all: async (db, params) => (await exec(db, params)).rows,
    first: async (db, params) => (await exec(db, params)).rows[0],
    changed: async (db, params) => Number((await exec(db, params)).numAffectedRows ?? 0n),
  };
}

/**
 * INSERT of one row into `table`, compiled once per set of columns given (a column whose value
 * is undefined is left out, as Kysely's own `values` does, so the database default applies).
 */
export function preparedInsert<T extends keyof Database & string>(table: T) {
  const plans = new Map<string, WeakMap<object, Plan>>();
  return async (db: Executor, row: Insertable<Database[T]>): Promise<void> => {
    const values = row as Record<string, unknown>;
    const columns = Object.keys(values).filter((k) => values[k] !== undefined);
    const key = columns.join(',');
    let byDialect = plans.get(key);
    if (!byDialect) plans.set(key, (byDialect = new WeakMap()));
    // The stand-in row is built only on the first run per dialect (planFor calls build then).
    const build = () => db.insertInto(table).values(Object.fromEntries(columns.map((c) => [c, new Slot(c)])) as never);
    await run(db, planFor(byDialect, db, build), values);
  };
}
