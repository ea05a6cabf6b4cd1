import type { Knex } from 'knex';
import { isPostgres, sqliteConnectionOf, type SqliteConnection } from './db.ts';

/**
 * Plain statements for the hot paths (a channel notify and its webhook), on the pool's own
 * connections. A knex query builds, compiles and queues every statement, and a knex
 * transaction builds a whole new knex instance; at hundreds of notifies a second that was most
 * of the gateway's CPU. Here a statement's text is written once and prepared once per
 * connection (better-sqlite3 statements; named pg statements), and a transaction is BEGIN,
 * the statements, COMMIT on one pooled connection.
 *
 * SQL is written with `?` placeholders (turned into $1… for PostgreSQL) in the subset both
 * databases speak (RETURNING included). Booleans bind as 0/1 on SQLite. Repos are still the
 * only place that writes SQL; services pass the `Sql` they were given.
 */
export interface Sql {
  /** Every row of a SELECT or of a statement with RETURNING. */
  all<T = any>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  first<T = any>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  /** Runs a statement; resolves with how many rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
  /** INSERT of one row or several rows with the same columns. */
  insert(table: string, rows: Record<string, unknown> | Array<Record<string, unknown>>): Promise<void>;
}

type Runner = (sql: string, params: readonly unknown[], reader: 'all' | 'run') => Promise<any>;

class Statements implements Sql {
  /** Run once the transaction has committed (never on rollback); only transaction() sets them. */
  readonly onCommit: Array<() => void> = [];
  /**
   * @param owner the database a transaction() runs on (undefined for autocommit statements and
   *   knex transactions): what commit hooks are keyed by.
   */
  constructor(private readonly exec: Runner, readonly owner?: Knex) {}
  all(sql: string, params: readonly unknown[] = []) {
    return this.exec(sql, params, 'all');
  }
  async first(sql: string, params: readonly unknown[] = []) {
    return (await this.exec(sql, params, 'all'))[0];
  }
  run(sql: string, params: readonly unknown[] = []) {
    return this.exec(sql, params, 'run');
  }
  /** While set (holdInserts), insert() keeps its rows here, to be written together later. */
  held?: Array<{ table: string; row: Record<string, unknown> }>;
  async insert(table: string, input: Record<string, unknown> | Array<Record<string, unknown>>) {
    const rows = Array.isArray(input) ? input : [input];
    if (rows.length === 0) return;
    if (this.held) {
      for (const row of rows) this.held.push({ table, row });
      return;
    }
    const columns = Object.keys(rows[0]);
    const params: unknown[] = [];
    for (const row of rows) for (const c of columns) params.push(row[c] === undefined ? null : row[c]);
    await this.exec(insertText(table, columns, rows.length), params, 'run');
  }
}

const insertTexts = new Map<string, string>();
function insertText(table: string, columns: string[], count: number): string {
  const key = `${table}|${count}|${columns.join(',')}`;
  let text = insertTexts.get(key);
  if (!text) {
    const tuple = `(${columns.map(() => '?').join(',')})`;
    text = `insert into "${table}" (${columns.map((c) => `"${c}"`).join(',')}) values ${Array.from({ length: count }, () => tuple).join(',')}`;
    if (insertTexts.size > 1000) insertTexts.clear();
    insertTexts.set(key, text);
  }
  return text;
}

// ---- SQLite ----------------------------------------------------------------------------------

const sqliteBindings = (params: readonly unknown[]) => params.map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v));

/** Runs on a better-sqlite3 connection; its prepare() is cached per connection (db.ts). */
function sqliteRun(conn: SqliteConnection, sql: string, params: readonly unknown[], reader: 'all' | 'run'): any {
  const stmt = conn.prepare(sql);
  const bindings = sqliteBindings(params);
  if (reader === 'all') return stmt.all(...bindings);
  return stmt.run(...bindings).changes;
}

// ---- PostgreSQL ------------------------------------------------------------------------------

const pgTexts = new Map<string, { name: string; text: string }>();
/** `?` → `$n`, and a statement name so that each connection prepares it once. */
function pgStatement(sql: string) {
  let s = pgTexts.get(sql);
  if (!s) {
    let n = 0;
    s = { name: `cs_${pgTexts.size}`, text: sql.replace(/\?/g, () => `$${++n}`) };
    pgTexts.set(sql, s);
  }
  return s;
}

interface PgConnection {
  query(q: { name: string; text: string; values: unknown[] }): Promise<{ rows: any[]; rowCount: number | null }>;
  query(text: string): Promise<unknown>;
}

async function pgRun(conn: PgConnection, sql: string, params: readonly unknown[], reader: 'all' | 'run'): Promise<any> {
  const res = await conn.query({ ...pgStatement(sql), values: params as unknown[] });
  return reader === 'all' ? res.rows : res.rowCount ?? 0;
}

// ---- handles ---------------------------------------------------------------------------------

interface Pool {
  acquireConnection(): Promise<any>;
  releaseConnection(conn: unknown): Promise<void>;
}
const poolOf = (db: Knex) => db.client as unknown as Pool;

async function withConnection<T>(db: Knex, fn: (conn: any) => Promise<T> | T): Promise<T> {
  const pool = poolOf(db);
  const conn = await pool.acquireConnection();
  try {
    return await fn(conn);
  } finally {
    await pool.releaseConnection(conn);
  }
}

const autocommit = new WeakMap<Knex, Sql>();

/**
 * Statements on `db`: a knex transaction's own connection when given one (so code that already
 * runs inside a knex transaction can call repo functions written for Sql), otherwise single
 * autocommit statements on the pool. On SQLite a statement runs at once on the connection when
 * no transaction is open on it (it is synchronous, so nothing can interleave); while one is
 * open, it waits for the connection like any query and never sees uncommitted rows.
 */
export function sqlOf(db: Knex | Knex.Transaction | Sql): Sql {
  if (db instanceof Statements) return db;
  const k = db as Knex;
  if ((k as Knex.Transaction).isTransaction) return knexTransactionSql(k as Knex.Transaction);
  let sql = autocommit.get(k);
  if (sql) return sql;
  if (isPostgres(k)) {
    sql = new Statements((text, params, reader) => withConnection(k, (conn) => pgRun(conn, text, params, reader)));
  } else {
    const current = sqliteConnectionOf(k);
    sql = new Statements(async (text, params, reader) => {
      const conn = current();
      if (conn?.open && !conn.inTransaction) return sqliteRun(conn, text, params, reader);
      return withConnection(k, (c) => sqliteRun(c, text, params, reader));
    });
  }
  autocommit.set(k, sql);
  return sql;
}

function knexTransactionSql(trx: Knex.Transaction): Sql {
  const pg = isPostgres(trx);
  return new Statements(async (text, params, reader) => {
    const res = await trx.raw(text, (pg ? params : sqliteBindings(params)) as Knex.RawBinding[]);
    if (pg) return reader === 'all' ? res.rows : res.rowCount ?? 0;
    return reader === 'all' ? res : res.changes;
  });
}

/**
 * BEGIN, fn, COMMIT on one pooled connection; ROLLBACK if fn throws. Everything inside must go
 * through `tx` (the pool may have no other connection to give: SQLite has one).
 */
export async function transaction<T>(db: Knex, fn: (tx: Sql) => Promise<T>): Promise<T> {
  const pg = isPostgres(db);
  return withConnection(db, async (conn) => {
    // IMMEDIATE: a writer takes SQLite's write lock at BEGIN, so another process's writer
    // waits (busy_timeout) instead of failing to upgrade a read lock halfway.
    if (pg) await conn.query('BEGIN');
    else conn.prepare('BEGIN IMMEDIATE').run();
    const tx = new Statements(pg ? (text, params, reader) => pgRun(conn, text, params, reader) : async (text, params, reader) => sqliteRun(conn, text, params, reader), db);
    let result: T;
    try {
      result = await fn(tx);
      if (pg) await conn.query('COMMIT');
      else conn.prepare('COMMIT').run();
    } catch (err) {
      try {
        if (pg) await conn.query('ROLLBACK');
        else if (conn.inTransaction) conn.prepare('ROLLBACK').run();
      } catch {
        // The connection is broken: the pool drops it, and the server rolled back.
      }
      throw err;
    }
    for (const hook of tx.onCommit) {
      // Committed is committed: a hook's failure must not make the caller think otherwise.
      try {
        hook();
      } catch {
        // Hooks are best-effort hand-offs with a slower path behind them (the outbox's claim).
      }
    }
    return result;
  });
}

/**
 * The database of a transaction() and a way to act once it commits, or undefined outside one
 * (autocommit statements, knex transactions): callers then do without.
 */
export function commitHooksOf(sql: Knex | Knex.Transaction | Sql): { owner: Knex; onCommit: (hook: () => void) => void } | undefined {
  if (!(sql instanceof Statements) || !sql.owner) return undefined;
  return { owner: sql.owner, onCommit: (hook) => sql.onCommit.push(hook) };
}

/** Inserts held back in a transaction: see holdInserts. */
export interface HeldInserts {
  /** A position to drop back to (a savepoint's rollback drops what was held since). */
  mark(): number;
  dropSince(mark: number): void;
  /** Writes what is held, one multi-row INSERT per table and column set in the order first seen, and stops holding. */
  flush(): Promise<void>;
}

/**
 * From now on, `insert()` on this transaction's statements holds its rows instead of writing
 * them, until flush() writes them together: a batch of jobs that share a transaction (SQLite's
 * group commit) then costs one INSERT per table rather than one per row. Only for jobs that never
 * read back the rows they insert; a unique violation surfaces at flush() and fails the batch.
 * Tables are written in the order first seen, so rows referring to an earlier one's keys follow it.
 */
export function holdInserts(tx: Sql): HeldInserts {
  if (!(tx instanceof Statements)) throw new Error('holdInserts needs a transaction of sql.ts');
  const held: Array<{ table: string; row: Record<string, unknown> }> = (tx.held = []);
  return {
    mark: () => held.length,
    dropSince: (mark) => void held.splice(mark),
    async flush() {
      tx.held = undefined;
      const groups = new Map<string, { table: string; rows: Array<Record<string, unknown>> }>();
      for (const { table, row } of held) {
        const key = `${table}|${Object.keys(row).join(',')}`;
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { table, rows: [] }));
        g.rows.push(row);
      }
      for (const { table, rows } of groups.values()) {
        // Within SQLite's 32766 variables a statement.
        const per = Math.max(1, Math.floor(32_000 / Object.keys(rows[0]).length));
        for (let i = 0; i < rows.length; i += per) await tx.insert(table, rows.slice(i, i + per));
      }
    },
  };
}
