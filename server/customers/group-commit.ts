import type { Knex } from 'knex';
import { holdInserts, transaction, type Sql } from '../sql.ts';

interface Job {
  run: (tx: Sql) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for SQLite's balance payments: the jobs that arrive in one turn of the event loop
 * share one transaction, each inside a SAVEPOINT of its own, so a job that fails (a balance too
 * low, a taken out_trade_no) rolls back alone and the others commit together. SQLite has one
 * writer and one connection, so the jobs ran one after another anyway; what they share is the
 * commit, which was most of a balance payment's cost (every index page it touched, written to
 * the WAL again per payment). A job's answer is given only once its transaction committed. When
 * the shared transaction itself fails (the COMMIT, or the rows' INSERTs, which are held back and
 * written together at the end: a taken out_trade_no shows there), each job runs again alone.
 * PostgreSQL does without: one transaction holding several customers' rows could deadlock with
 * another process's.
 */
export class GroupCommit {
  private queue: Job[] = [];
  private scheduled = false;

  constructor(private readonly db: Knex, private readonly maxBatch = 100) {}

  run<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run: fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    while (this.queue.length) {
      const batch = this.queue.splice(0, this.maxBatch);
      if (batch.length === 1) {
        await this.alone(batch[0]);
        continue;
      }
      const outcomes: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }> = [];
      try {
        await transaction(this.db, async (tx) => {
          // The jobs' rows are written together at the end, one INSERT per table.
          const held = holdInserts(tx);
          for (const job of batch) {
            await tx.run('savepoint balance_job');
            const mark = held.mark();
            try {
              const value = await job.run(tx);
              await tx.run('release balance_job');
              outcomes.push({ ok: true, value });
            } catch (err) {
              await tx.run('rollback to balance_job');
              await tx.run('release balance_job');
              held.dropSince(mark);
              outcomes.push({ ok: false, err });
            }
          }
          await held.flush();
        });
      } catch {
        for (const job of batch) await this.alone(job);
        continue;
      }
      batch.forEach((job, i) => {
        const o = outcomes[i];
        if (o.ok) job.resolve(o.value);
        else job.reject(o.err);
      });
    }
  }

  private async alone(job: Job): Promise<void> {
    try {
      job.resolve(await transaction(this.db, job.run));
    } catch (err) {
      job.reject(err);
    }
  }
}

const groups = new WeakMap<Knex, GroupCommit>();

/** The group commit of this database (one per process). */
export function groupCommitFor(db: Knex): GroupCommit {
  let g = groups.get(db);
  if (!g) groups.set(db, (g = new GroupCommit(db)));
  return g;
}
