import { drizzle } from "drizzle-orm/d1";
import * as schema from "./schema";

export type Db = ReturnType<typeof getDb>;

const dbs = new WeakMap<D1Database, ReturnType<typeof openDb>>();
const openDb = (d1: D1Database) => drizzle(guardBoundParameters(d1), { schema });

/**
 * Every query in the Worker goes through this, so the parameter guard below sees them all. One
 * instance per binding: drizzle() rebuilds its relational config each time (~1–2 ms of CPU per
 * request on the local runtime, most of a small log upload's cost).
 */
export function getDb(d1: D1Database) {
  let db = dbs.get(d1);
  if (!db) {
    db = openDb(d1);
    dbs.set(d1, db);
  }
  return db;
}

// D1 refuses statements with more than 100 bound parameters in production, but the local
// simulator does not, so a query that passes every test could fail only once deployed. This
// wrapper refuses such a statement everywhere. Code that writes or matches many values binds
// them as one JSON array and expands it with json_each (see services/ingest.ts, reports.ts).
export const MAX_BOUND_PARAMETERS = 100;

export class TooManyParametersError extends Error {
  constructor(count: number, sql: string) {
    super(`statement binds ${count} parameters; D1 allows ${MAX_BOUND_PARAMETERS}: ${sql.slice(0, 120)}`);
    this.name = "TooManyParametersError";
  }
}

function forward<T extends object>(target: T, prop: string | symbol) {
  const value = Reflect.get(target, prop, target);
  return typeof value === "function" ? value.bind(target) : value;
}

/**
 * Statements prepared in this isolate, for the fleet figures (GET /api/v1/fleet/stats) and for
 * tests that prove a code path costs O(1) queries. Drizzle prepares once per execution.
 */
export const d1Counter = { statements: 0 };
type StatementObserver = (sql: string) => void;
const observers = new Set<StatementObserver>();

/** Calls `observer` with the SQL of every statement prepared from now on; returns the unsubscribe. */
export function observeStatements(observer: StatementObserver): () => void {
  observers.add(observer);
  return () => observers.delete(observer);
}

export function guardBoundParameters(d1: D1Database): D1Database {
  return new Proxy(d1, {
    get(target, prop) {
      if (prop !== "prepare") return forward(target, prop);
      return (sql: string) => {
        d1Counter.statements++;
        for (const observer of observers) observer(sql);
        return new Proxy(target.prepare(sql), {
          get(statement, name) {
            if (name !== "bind") return forward(statement, name);
            return (...values: unknown[]) => {
              if (values.length > MAX_BOUND_PARAMETERS) throw new TooManyParametersError(values.length, sql);
              return statement.bind(...values);
            };
          },
        });
      };
    },
  });
}
