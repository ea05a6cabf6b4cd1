import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Knex } from 'knex';
import { createDb, migrate } from '../../server/db.ts';
import { loadConfig } from '../../server/config.ts';
import { createLogger, type LogLevel } from '../../server/log.ts';
import { newId, nowSeconds, randomId } from '../../server/crypto.ts';
import type { Deps, StatusBus } from '../../server/deps.ts';

/** Test plumbing for the webhook and events tests: a real database, a stub bus, a local receiver. */

export const pgUrl = process.env.TEST_DATABASE_URL?.startsWith('postgres://') ? process.env.TEST_DATABASE_URL : undefined;

export interface TestDb {
  db: Knex;
  /** Another pool on the same database: a second gateway instance (PostgreSQL only). */
  openAnother(): Knex;
  close(): Promise<void>;
}

/** SQLite in memory, or a fresh schema on TEST_DATABASE_URL that is dropped afterwards. */
export async function openTestDb(): Promise<TestDb> {
  if (!pgUrl) {
    const db = createDb('sqlite::memory:');
    await migrate(db);
    return { db, openAnother: () => db, close: () => db.destroy() };
  }
  const schema = 't_' + randomId(16).toLowerCase();
  const db = createDb(pgUrl, { schema });
  await migrate(db);
  const others: Knex[] = [];
  return {
    db,
    openAnother() {
      const other = createDb(pgUrl, { schema });
      others.push(other);
      return other;
    },
    async close() {
      for (const o of others) await o.destroy();
      await db.raw(`DROP SCHEMA "${schema}" CASCADE`);
      await db.destroy();
    },
  };
}

export function stubBus(): StatusBus {
  const listeners = new Map<string, Set<(m: string) => void>>();
  return {
    async publish(topic, message) {
      for (const fn of listeners.get(topic) ?? []) fn(message);
    },
    subscribe(topic, fn) {
      if (!listeners.has(topic)) listeners.set(topic, new Set());
      listeners.get(topic)!.add(fn);
      return () => listeners.get(topic)!.delete(fn);
    },
    subscribePrefix() {
      return () => undefined;
    },
  };
}

export function makeDeps(db: Knex, opts: { allowPrivateWebhooks?: boolean; logLevel?: LogLevel; logLines?: string[] } = {}): Deps {
  const config = loadConfig({}, {
    masterKey: crypto.randomBytes(32).toString('base64'),
    logLevel: opts.logLevel ?? 'silent',
    allowPrivateWebhooks: opts.allowPrivateWebhooks ? 'true' : 'false',
  });
  const logLines = opts.logLines;
  const logger = logLines ? createLogger(opts.logLevel ?? 'debug', (l) => logLines.push(l)) : createLogger('silent');
  return { db, config, logger, bus: stubBus() };
}

export async function insertApp(db: Knex, name = 'Test shop'): Promise<string> {
  const id = newId('app');
  await db('apps').insert({ id, name, allowed_origins: '[]', created: nowSeconds() });
  return id;
}

export interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  path: string;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
}

/** A merchant backend on 127.0.0.1: records every request and answers what `reply` says. */
export async function startReceiver(reply: (r: Received, index: number) => Reply = () => ({ status: 200, body: 'ok' })) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), path: req.url ?? '/' };
      received.push(r);
      const answer = reply(r, received.length - 1);
      const send = () => {
        res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
        res.end(answer.body ?? '');
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // fetch keeps connections alive; do not wait for them to idle out
      }),
  };
}
