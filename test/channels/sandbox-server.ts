import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import express from 'express';
import type { Knex } from 'knex';
import { createDb, migrate } from '../../server/db.ts';
import { createLogger } from '../../server/log.ts';
import type { SandboxDeps } from '../../server/sandbox/types.ts';

const root = path.resolve(import.meta.dirname, '../..');

/**
 * A bare Express app on a free port with an in-memory database, the EJS views and a CSP nonce:
 * what a channel simulator needs to run over real HTTP without the rest of the gateway.
 */
export async function startSandboxServer(opts: { db?: Knex } = {}) {
  // A caller's database (already migrated, e.g. a PostgreSQL schema), or a fresh SQLite in memory.
  const db = opts.db ?? createDb('sqlite::memory:');
  if (!opts.db) await migrate(db);
  const app = express();
  app.set('view engine', 'ejs');
  app.set('views', path.join(root, 'views'));
  app.use((_req, res, next) => {
    res.locals.cspNonce = 'nonce-for-tests';
    next();
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const logLines: string[] = [];
  const deps: SandboxDeps = { db, publicUrl: base, masterKey: crypto.randomBytes(32), logger: createLogger('debug', (l) => logLines.push(l)) };
  return { db, app, server, base, logLines, deps };
}

/** Polls until find() returns something (a notify arrived, a timer fired), or fails after ms. */
export async function waitFor<T>(find: () => T | undefined, ms = 3000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const hit = find();
    if (hit !== undefined) return hit;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
