import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { insertEvent } from '../../server/events/repo.ts';
import { createEndpoint } from '../../server/webhooks/service.ts';
import { startWebhookWorker, type WebhookWorker } from '../../server/webhooks/worker.ts';
import type { Deps } from '../../server/deps.ts';
import { insertApp, makeDeps, openTestDb, startReceiver, type TestDb } from './webhook-helpers.ts';

// A receiver that resets the connection (TCP RST) at some point of its answer. No worker may die
// of it, and an answer that never ended is no answer: the attempt is recorded as failed and the
// delivery retried, since the receiver may not have taken the event (it deduplicates on webhook-id).

type ResetAt = 'on the request' | 'in the status line' | 'after the headers' | 'in the body';

const partial: Record<ResetAt, string | null> = {
  'on the request': null,
  'in the status line': 'HTTP/1.1 20',
  'after the headers': 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n',
  'in the body': 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\nreceived, writing the res',
};

/** A raw TCP endpoint: reads one request, writes `partial[at]`, then resets the socket. */
async function startResettingReceiver(at: ResetAt) {
  let requests = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let seen = '';
    socket.on('data', (chunk) => {
      seen += chunk.toString('latin1');
      const head = seen.indexOf('\r\n\r\n');
      if (head < 0) return;
      const length = Number(/content-length:\s*(\d+)/i.exec(seen.slice(0, head))?.[1] ?? 0);
      if (seen.length < head + 4 + length) return;
      requests++;
      const bytes = partial[at];
      if (bytes === null) return socket.resetAndDestroy();
      // The reset must come after these bytes have left, or the client would never see them.
      socket.write(bytes, () => setTimeout(() => socket.resetAndDestroy(), 20));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    requests: () => requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

let tdb: TestDb;
let deps: Deps;
let appId: string;
const cleanups: Array<() => Promise<void>> = [];

beforeEach(async () => {
  tdb = await openTestDb();
  deps = makeDeps(tdb.db, { allowPrivateWebhooks: true });
  appId = await insertApp(tdb.db);
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
  await tdb.close();
});

const emit = (id: string) => tdb.db.transaction((trx) => insertEvent(trx, { appId, livemode: false, type: 'payment.succeeded', object: { id, object: 'payment' } }));

describe('webhook worker and a receiver that resets the connection', () => {
  it.each(['on the request', 'in the status line', 'after the headers', 'in the body'] as ResetAt[])(
    'records a reset %s as a failed attempt, schedules a retry and goes on delivering',
    async (at) => {
      const resetting = await startResettingReceiver(at);
      cleanups.push(resetting.close);
      const good = await startReceiver();
      cleanups.push(good.close);
      const { endpoint } = await createEndpoint(deps, { appId, livemode: false }, { url: resetting.url });
      const w: WebhookWorker = startWebhookWorker(deps, { background: false });
      cleanups.push(() => w.stop());

      const event = await emit('pay_reset');
      expect(await w.runOnce()).toBe(1);
      expect(resetting.requests()).toBeGreaterThanOrEqual(1);
      const [d] = await tdb.db('webhook_deliveries').where({ event_id: event.id, endpoint_id: endpoint.id });
      expect(d).toMatchObject({ status: 'pending', attempt_count: 1, last_status_code: null, locked_until_ms: null });
      expect(Number(d.next_attempt_at_ms)).toBeGreaterThan(Date.now());
      const attempts = await tdb.db('webhook_attempts').where({ delivery_id: d.id });
      expect(attempts).toHaveLength(1);
      expect(attempts[0]).toMatchObject({ status_code: null, error: expect.stringMatching(/ECONNRESET|reset|socket hang up/i) });

      // The same worker delivers the next event to a healthy endpoint.
      await createEndpoint(deps, { appId, livemode: false }, { url: good.url });
      const next = await emit('pay_after');
      expect(await w.runOnce()).toBe(2);
      expect(good.received.map((r) => JSON.parse(r.body).id)).toEqual([next.id]);
    },
  );
});
