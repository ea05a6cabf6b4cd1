import type { Knex } from 'knex';

interface Pending {
  row: Record<string, unknown> & { id: string };
  resolve: (inserted: boolean) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for a hot insert: rows that arrive in the same turn of the event loop go to the
 * database in one multi-row INSERT … ON CONFLICT DO NOTHING RETURNING id, so they share one
 * statement and one commit (on SQLite each commit is a WAL write). Each caller learns whether its
 * own row went in or hit a unique constraint.
 */
export class InsertBatcher {
  private queue: Pending[] = [];
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
      try {
        const inserted: Array<{ id: string }> = await this.db(this.table)
          .insert(batch.map((p) => p.row))
          .onConflict()
          .ignore()
          .returning('id');
        const ids = new Set(inserted.map((r) => r.id));
        for (const p of batch) p.resolve(ids.has(p.row.id));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
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
