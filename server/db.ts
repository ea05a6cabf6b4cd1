import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import knexFactory, { type Knex } from 'knex';
import { migrations } from '../migrations/index.ts';

export type Db = Knex;

// pg is loaded only for a PostgreSQL database (knex requires its driver the same way): on
// SQLite it would be a sixth of the process's start-up CPU for nothing.
const require = createRequire(import.meta.url);

/** int8 (amounts in fen, unix times in ms) as numbers: every value we store is below 2^53. */
function parseInt8AsNumber(): void {
  const pg = require('pg') as typeof import('pg');
  pg.types.setTypeParser(20, (v: string) => Number.parseInt(v, 10));
}

export interface DbOptions {
  /** PostgreSQL only: schema to use (migrate() creates it), so test runs never see each other. */
  schema?: string;
  pool?: { min?: number; max?: number };
}

export function isPostgres(db: Knex): boolean {
  return db.client.config.client === 'pg';
}

/** Opens the database that DATABASE_URL names: better-sqlite3 (WAL, foreign keys) or pg. */
export function createDb(databaseUrl: string, options: DbOptions = {}): Knex {
  if (databaseUrl.startsWith('sqlite:')) {
    const file = databaseUrl.slice('sqlite:'.length);
    if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    let connection: SqliteConnection | undefined;
    const db = knexFactory({
      client: 'better-sqlite3',
      connection: { filename: file },
      useNullAsDefault: true,
      pool: {
        min: 1,
        max: 1,
        afterCreate(conn: any, done: (err: Error | null, conn: unknown) => void) {
          conn.pragma('journal_mode = WAL');
          conn.pragma('foreign_keys = ON');
          conn.pragma('busy_timeout = 5000');
          conn.pragma('synchronous = NORMAL');
          cachePreparedStatements(conn);
          connection = conn;
          done(null, conn);
        },
      },
    });
    sqliteConnections.set(db, () => connection);
    return db;
  }
  parseInt8AsNumber();
  const schema = options.schema;
  return knexFactory({
    client: 'pg',
    connection: databaseUrl,
    searchPath: schema ? [schema] : undefined,
    pool: {
      min: options.pool?.min ?? 0,
      max: options.pool?.max ?? 10,
    },
  });
}

export interface SqliteConnection {
  open: boolean;
  inTransaction: boolean;
  pragma(source: string): unknown;
  prepare(sql: string): {
    get(...params: unknown[]): unknown;
    all(...params: unknown[]): unknown[];
    run(...params: unknown[]): { changes: number };
  };
}

const sqliteConnections = new WeakMap<Knex, () => SqliteConnection | undefined>();

/** The pooled better-sqlite3 connection of a SQLite database, once it is open (see sql.ts). */
export function sqliteConnectionOf(db: Knex): () => SqliteConnection | undefined {
  return sqliteConnections.get(db) ?? (() => undefined);
}

/**
 * One row by a hot read (the cashier's page views). On SQLite, when no transaction is open on the
 * connection, the cached prepared statement runs directly: knex's builder, pool and promise
 * chain cost several times the query itself. Inside a transaction (someone else's, between its
 * statements) it queues through knex like any query, so it never reads uncommitted rows.
 */
export async function firstRow(db: Knex, sql: string, bindings: readonly (string | number)[]): Promise<any> {
  const conn = sqliteConnections.get(db)?.();
  if (conn?.open && !conn.inTransaction) return conn.prepare(sql).get(...bindings);
  const result = await db.raw(sql, bindings as (string | number)[]);
  return isPostgres(db) ? result.rows[0] : result[0];
}

/**
 * knex prepares every query anew; on better-sqlite3 preparing costs more than running a simple
 * query. Statements are reused per connection by their SQL text (bounded; cleared when full).
 */
function cachePreparedStatements(conn: { prepare(sql: string): unknown }): void {
  const prepare = conn.prepare.bind(conn);
  const cache = new Map<string, unknown>();
  conn.prepare = (sql: string) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      if (cache.size >= 1000) cache.clear();
      stmt = prepare(sql);
      cache.set(sql, stmt);
    }
    return stmt;
  };
}

const source: Knex.MigrationSource<(typeof migrations)[number]> = {
  getMigrations: async () => migrations,
  getMigrationName: (m) => m.name,
  getMigration: async (m) => m,
};

/** Brings the schema up to date; the same migrations serve SQLite and PostgreSQL. */
export async function migrate(db: Knex): Promise<string[]> {
  const schema = (db.client.config as { searchPath?: string[] }).searchPath?.[0];
  if (isPostgres(db) && schema) await db.raw('CREATE SCHEMA IF NOT EXISTS ??', [schema]);
  const [, applied] = await db.migrate.latest({ migrationSource: source });
  return applied as string[];
}

/** Parses a JSON text column (SQLite) or passes a parsed json value (PostgreSQL) through. */
export function parseJson<T>(value: unknown, fallback: T): T {
  if (value === null || value === undefined) return fallback;
  if (typeof value === 'string') return JSON.parse(value) as T;
  return value as T;
}

export const bool = (v: unknown): boolean => v === true || v === 1 || v === '1';
