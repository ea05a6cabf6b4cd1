/**
 * SQLite's WAL checkpoints, off the event loop. By default the connection that commits the
 * 1000th page of the WAL copies the WAL back into the database file and fsyncs it, inside that
 * COMMIT: on the notify path that was more than half of a commit's cost, and a stall of every
 * request behind it. Here a worker thread with a connection of its own checkpoints (PASSIVE: it
 * never waits for or blocks the gateway's connection) every `everyMs`, which also writes a page
 * that many transactions changed once rather than once per thousand pages. The gateway's own
 * connection keeps an automatic checkpoint at a far larger WAL as a safety net, should the
 * thread fall behind or die.
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type { Knex } from 'knex';
import { sqliteConnectionOf } from './db.ts';

/** Pages of WAL (4 KiB each) after which the gateway's connection checkpoints itself anyway. */
const SAFETY_NET_PAGES = 25_000;

// Plain CommonJS, evaluated in the thread: no TypeScript loader needed there, in tsx or dist alike.
const THREAD = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
const checkpoint = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch { /* busy or closing: next time */ } };
const timer = setInterval(checkpoint, workerData.everyMs);
parentPort.on('message', () => { clearInterval(timer); checkpoint(); db.close(); parentPort.close(); });
`;

export interface Checkpointer {
  stop(): Promise<void>;
}

export function startCheckpointer(db: Knex, file: string, everyMs = 1000): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(THREAD, { eval: true, workerData: { driver, file, everyMs } });
  worker.unref();
  // The pool's connection exists once migrations have run; a recreated one gets SQLite's default back.
  sqliteConnectionOf(db)()?.pragma(`wal_autocheckpoint = ${SAFETY_NET_PAGES}`);
  let exited = false;
  const gone = new Promise<void>((resolve) => worker.once('exit', () => { exited = true; resolve(); }));
  worker.on('error', () => {
    // The safety net checkpoints instead; nothing to do here.
  });
  return {
    async stop() {
      if (!exited) worker.postMessage('stop');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 2000).unref())]);
      if (!exited) await worker.terminate();
    },
  };
}
