import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { StatusBus } from './deps.ts';
import type { Logger } from './log.ts';

export type ClosableBus = StatusBus & { close(): Promise<void> };

/** In-process bus: enough for one gateway process (SQLite). */
export function createLocalBus(): ClosableBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    async publish(topic, message) {
      emitter.emit(topic, message);
    },
    subscribe(topic, fn) {
      emitter.on(topic, fn);
      return () => emitter.off(topic, fn);
    },
    async close() {
      emitter.removeAllListeners();
    },
  };
}

/**
 * PostgreSQL LISTEN/NOTIFY bus: a status change accepted by one gateway process reaches cashiers
 * and workers in every other process on the same database (and schema). One dedicated
 * connection listens; it reconnects if it drops.
 */
export async function createPgBus(databaseUrl: string, schema: string | undefined, logger: Logger): Promise<ClosableBus> {
  const channel = `checkstand_${(schema ?? 'public').replace(/[^a-z0-9_]/g, '')}`.slice(0, 63);
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  const publisher = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  let listener: pg.Client | undefined;
  let closed = false;

  async function listen(): Promise<void> {
    const client = new pg.Client({ connectionString: databaseUrl });
    client.on('notification', (n) => {
      if (n.channel !== channel || !n.payload) return;
      const at = n.payload.indexOf('\n');
      emitter.emit(n.payload.slice(0, at), n.payload.slice(at + 1));
    });
    client.on('error', (err) => {
      logger.warn('status bus connection lost; reconnecting', { err });
      client.end().catch(() => undefined);
      if (!closed) setTimeout(() => listen().catch(() => undefined), 1000).unref();
    });
    await client.connect();
    await client.query(`LISTEN "${channel}"`);
    listener = client;
  }
  await listen();

  return {
    async publish(topic, message) {
      // NOTIFY payloads must stay under 8000 bytes; ours are ids and statuses.
      await publisher.query('SELECT pg_notify($1, $2)', [channel, `${topic}\n${message}`]);
    },
    subscribe(topic, fn) {
      emitter.on(topic, fn);
      return () => emitter.off(topic, fn);
    },
    async close() {
      closed = true;
      emitter.removeAllListeners();
      await listener?.end().catch(() => undefined);
      await publisher.end().catch(() => undefined);
    },
  };
}
