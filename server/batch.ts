import type { Knex } from 'knex';
import { isPostgres } from './db.ts';

interface Pending {
  row: Record<string, unknown> & { id: string };
  resolve: (inserted: boolean) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for a hot insert: rows that arrive in the same turn of the event loop go to the
 * database in one multi-row INSERT … ON CONFLICT DO NOTHING RETURNING id, so they share one
 * statement and one commit (on SQLite each commit is a WAL write). Each caller learns whether its
 * own row went in or hit a unique constraint. One caller's bad row never fails the others: a
 * statement is all or nothing, so when the shared one fails, each row is tried again on its own.
 * Rows carry fresh random ids (nothing else may hold them).
 */
export class InsertBatcher {
  private queue: Pending[] = [];
  private statements = new WeakMap<object, Map<string, any>>();
  private scheduled = false;

  constructor(private readonly db: Knex, private readonly table: string, private readonly maxBatch = 200) {}

  insert(row: Pending['row']): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.maxBatch);
      let ids: Set<string>;
      try {
        ids = await this.insertRows(batch.map((p) => p.row));
      } catch (err) {
        if (batch.length === 1) batch[0].reject(err);
        else await Promise.all(batch.map((p) => this.insertAlone(p)));
        continue;
      }
      for (const p of batch) p.resolve(ids.has(p.row.id));
    }
  }

  /** One row in a statement of its own, after the shared statement failed (and so wrote nothing). */
  private async insertAlone(p: Pending): Promise<void> {
    try {
      if ((await this.insertRows([p.row])).has(p.row.id)) return p.resolve(true);
      // The shared statement may have committed before its answer was lost (a dropped connection):
      // then the conflict is with this very row.
      p.resolve(Boolean(await this.db(this.table).where({ id: p.row.id }).first('id')));
    } catch (err) {
      p.reject(err);
    }
  }

  private async insertRows(rows: Array<Record<string, unknown>>): Promise<Set<string>> {
    const inserted = isPostgres(this.db) ? await this.insertWithKnex(rows) : await this.insertSqlite(rows);
    return new Set(inserted.map((r) => r.id));
  }

  private async insertWithKnex(rows: Array<Record<string, unknown>>): Promise<Array<{ id: string }>> {
    return this.db(this.table).insert(rows).onConflict().ignore().returning('id');
  }

  /**
   * SQLite: a statement prepared once per batch size on the pooled connection. It runs
   * synchronously, so no other query can interleave with it on the single connection.
   */
  private async insertSqlite(rows: Array<Record<string, unknown>>): Promise<Array<{ id: string }>> {
    const columns = Object.keys(rows[0]);
    const client = this.db.client as { acquireConnection(): Promise<any>; releaseConnection(c: unknown): Promise<void> };
    const conn = await client.acquireConnection();
    try {
      let cache = this.statements.get(conn);
      if (!cache) this.statements.set(conn, (cache = new Map()));
      const key = `${rows.length}:${columns.join(',')}`;
      let stmt = cache.get(key);
      if (!stmt) {
        const tuple = `(${columns.map(() => '?').join(',')})`;
        const sql = `INSERT INTO "${this.table}" (${columns.map((c) => `"${c}"`).join(',')}) VALUES ${rows.map(() => tuple).join(',')} ON CONFLICT DO NOTHING RETURNING id`;
        cache.set(key, (stmt = conn.prepare(sql)));
      }
      const bindings: unknown[] = [];
      for (const row of rows) for (const c of columns) {
        const v = row[c];
        bindings.push(typeof v === 'boolean' ? (v ? 1 : 0) : v);
      }
      return stmt.all(bindings);
    } finally {
      await client.releaseConnection(conn);
    }
  }
}

const batchers = new WeakMap<Knex, Map<string, InsertBatcher>>();

/** The batcher for a table on this database (one per process). */
export function batcherFor(db: Knex, table: string): InsertBatcher {
  let byTable = batchers.get(db);
  if (!byTable) batchers.set(db, (byTable = new Map()));
  let b = byTable.get(table);
  if (!b) byTable.set(table, (b = new InsertBatcher(db, table)));
  return b;
}
