import { EventEmitter } from 'node:events';
import type { Client } from 'pg';
import type { StatusBus } from './deps.ts';
import type { Logger } from './log.ts';

export type ClosableBus = StatusBus & { close(): Promise<void> };

/** Topic listeners plus prefix listeners; both buses deliver through one. */
function createDispatcher() {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  const prefixed = new Set<{ prefix: string; fn: (topic: string, message: string) => void }>();
  return {
    dispatch(topic: string, message: string) {
      emitter.emit(topic, message);
      for (const p of prefixed) if (topic.startsWith(p.prefix)) p.fn(topic, message);
    },
    subscribe(topic: string, fn: (message: string) => void) {
      emitter.on(topic, fn);
      return () => {
        emitter.off(topic, fn);
      };
    },
    subscribePrefix(prefix: string, fn: (topic: string, message: string) => void) {
      const entry = { prefix, fn };
      prefixed.add(entry);
      return () => {
        prefixed.delete(entry);
      };
    },
    clear() {
      emitter.removeAllListeners();
      prefixed.clear();
    },
  };
}

/** In-process bus: enough for one gateway process (SQLite). */
export function createLocalBus(): ClosableBus {
  const d = createDispatcher();
  return {
    async publish(topic, message) {
      d.dispatch(topic, message);
    },
    subscribe: d.subscribe,
    subscribePrefix: d.subscribePrefix,
    async close() {
      d.clear();
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
  const { default: pg } = await import('pg');
  const d = createDispatcher();
  const publisher = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  let listener: Client | undefined;
  let closed = false;

  async function listen(): Promise<void> {
    const client = new pg.Client({ connectionString: databaseUrl });
    client.on('notification', (n) => {
      if (n.channel !== channel || !n.payload) return;
      const at = n.payload.indexOf('\n');
      d.dispatch(n.payload.slice(0, at), n.payload.slice(at + 1));
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
    subscribe: d.subscribe,
    subscribePrefix: d.subscribePrefix,
    async close() {
      closed = true;
      d.clear();
      await listener?.end().catch(() => undefined);
      await publisher.end().catch(() => undefined);
    },
  };
}
