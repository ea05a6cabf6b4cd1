import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { createDb, migrate, sqliteConnectionOf } from '../../server/db.ts';
import { startCheckpointer, type Checkpointer } from '../../server/sqlite-checkpointer.ts';

// Checkpoints move off the committing connection: the database file grows from the WAL while
// the gateway's own automatic checkpoint (raised far above what is written here) never runs.
describe('SQLite checkpoints in a thread', () => {
  let db: Knex | undefined;
  let checkpointer: Checkpointer | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await checkpointer?.stop();
    await db?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const writeMegabytes = async (knex: Knex, mb: number) => {
    await knex.schema.createTable('filler', (t) => { t.increments('id'); t.text('body'); });
    const body = 'x'.repeat(4000);
    for (let i = 0; i < mb * 256; i++) await knex('filler').insert({ body });
  };

  it('copies the WAL into the database file without a checkpoint on the gateway connection', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-ckpt-'));
    const file = path.join(dir, 'g.db');
    db = createDb(`sqlite:${file}`);
    await migrate(db);
    checkpointer = startCheckpointer(db, file, 100);
    expect(sqliteConnectionOf(db)()!.pragma('wal_autocheckpoint')).toEqual([{ wal_autocheckpoint: 25_000 }]);
    const before = fs.statSync(file).size;
    await writeMegabytes(db, 3);
    const deadline = Date.now() + 10_000;
    while (fs.statSync(file).size - before < 3 * 1024 * 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(fs.statSync(file).size - before).toBeGreaterThanOrEqual(3 * 1024 * 1024);
  });

  it('without it, the same writes stay in the WAL when the automatic checkpoint is that far off', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-ckpt-'));
    const file = path.join(dir, 'g.db');
    db = createDb(`sqlite:${file}`);
    await migrate(db);
    sqliteConnectionOf(db)()!.pragma('wal_autocheckpoint = 25000');
    const before = fs.statSync(file).size;
    await writeMegabytes(db, 3);
    await new Promise((r) => setTimeout(r, 300));
    expect(fs.statSync(file).size - before).toBeLessThan(1024 * 1024);
  });
});
