import dns from 'node:dns';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { insertEvent } from '../../server/events/repo.ts';
import { createEndpoint } from '../../server/webhooks/service.ts';
import { createWebhookClient, type WebhookClient } from '../../server/webhooks/client.ts';
import { startWebhookWorker } from '../../server/webhooks/worker.ts';
import type { Deps } from '../../server/deps.ts';
import { insertApp, makeDeps, openTestDb, startReceiver, type TestDb } from './webhook-helpers.ts';

// The address check runs on the address the delivery actually connects to (DESIGN §4): real
// sockets to a receiver on 127.0.0.1, with the real resolver or a fake one standing in for a
// DNS server that re-points a name (rebinding).

let tdb: TestDb;
let deps: Deps;
let appId: string;
const cleanups: Array<() => Promise<void> | void> = [];

beforeEach(async () => {
  tdb = await openTestDb();
  deps = makeDeps(tdb.db);
  appId = await insertApp(tdb.db);
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
  await tdb.close();
});

async function receiver() {
  const r = await startReceiver();
  cleanups.push(r.close);
  return r;
}

function client(resolve?: typeof dns.lookup): WebhookClient {
  const c = createWebhookClient({ resolve });
  cleanups.push(() => c.close());
  return c;
}

/** A DNS server under an attacker's control: every name resolves to what the test says. */
function fakeDns(answer: () => Array<{ address: string; family: number }>): typeof dns.lookup {
  return ((_host: string, _opts: unknown, cb: (err: Error | null, a: dns.LookupAddress[]) => void) => {
    setImmediate(() => cb(null, answer()));
  }) as unknown as typeof dns.lookup;
}

const portOf = (url: string) => new URL(url).port;
const post = (c: WebhookClient, url: string, livemode: boolean, allowPrivate = false) =>
  c.post({ url, headers: { 'content-type': 'application/json' }, body: '{}', policy: { livemode, allowPrivate }, timeoutMs: 5000 });

describe('webhook client', () => {
  it('refuses a live-mode connection to a name that resolves to loopback, before any byte is sent', async () => {
    const r = await receiver();
    await expect(post(client(), `http://localhost:${portOf(r.url)}/hooks`, true)).rejects.toThrow(
      /^Refused to connect to localhost \((127\.0\.0\.1|::1)\): live-mode webhooks may not reach loopback addresses unless the operator sets CHECKSTAND_ALLOW_PRIVATE_WEBHOOKS\.$/,
    );
    expect(r.received).toHaveLength(0);
  });

  it('lets test mode, and live mode with the operator setting, reach loopback', async () => {
    const r = await receiver();
    const c = client();
    expect((await post(c, `http://localhost:${portOf(r.url)}/hooks`, false)).statusCode).toBe(200);
    expect((await post(c, `http://localhost:${portOf(r.url)}/hooks`, true, true)).statusCode).toBe(200);
    expect(r.received).toHaveLength(2);
  });

  it('checks what DNS answers at connect time, not what the name looked like (rebinding)', async () => {
    const r = await receiver();
    let answer = '10.0.0.7';
    const c = client(fakeDns(() => [{ address: answer, family: 4 }]));
    const url = `http://shop.example.com:${portOf(r.url)}/hooks`;
    await expect(post(c, url, false)).rejects.toThrow(/test-mode webhooks may not reach private addresses unless the operator/);
    answer = '127.0.0.1';
    // Test mode may reach loopback, so the fake answer is really where the socket goes.
    expect((await post(c, url, false)).statusCode).toBe(200);
    expect(r.received[0].headers.host).toBe(`shop.example.com:${portOf(r.url)}`);
    await expect(post(c, url, true)).rejects.toThrow(/Refused to connect to shop\.example\.com \(127\.0\.0\.1\): live-mode webhooks may not reach loopback/);
    answer = '::ffff:127.0.0.1';
    await expect(post(c, url, true)).rejects.toThrow(/\(::ffff:127\.0\.0\.1\): live-mode webhooks may not reach loopback/);
    answer = '169.254.169.254';
    await expect(post(c, url, false, true)).rejects.toThrow(/may not reach metadata addresses\.$/);
    answer = '::ffff:a9fe:a9fe';
    await expect(post(c, url, false, true)).rejects.toThrow(/may not reach metadata addresses/);
    expect(r.received).toHaveLength(1);
  });

  it('connects only to the allowed addresses of a name that has several', async () => {
    const r = await receiver();
    const c = client(fakeDns(() => [{ address: '169.254.169.254', family: 4 }, { address: '127.0.0.1', family: 4 }]));
    expect((await post(c, `http://mixed.example.com:${portOf(r.url)}/hooks`, false)).statusCode).toBe(200);
    expect(r.received).toHaveLength(1);
  });

  it('refuses IP literals, which skip DNS, before connecting', async () => {
    const r = await receiver();
    const port = portOf(r.url);
    const c = client();
    for (const host of ['127.0.0.1', '[::ffff:7f00:1]', '[::ffff:127.0.0.1]']) {
      await expect(post(c, `http://${host}:${port}/hooks`, true)).rejects.toThrow(/live-mode webhooks may not reach loopback/);
    }
    await expect(post(c, 'http://169.254.169.254/latest/meta-data/', false, true)).rejects.toThrow(/Refused to connect to 169\.254\.169\.254: test-mode webhooks may not reach metadata addresses/);
    await expect(post(c, 'http://[fd00:ec2::254]/latest/meta-data/', false, true)).rejects.toThrow(/metadata/);
    await expect(post(c, 'http://0.0.0.0:' + port + '/hooks', false, true)).rejects.toThrow(/unspecified/);
    expect(r.received).toHaveLength(0);
  });

  it('does not reuse a test-mode connection for a live-mode delivery to the same host', async () => {
    const r = await receiver();
    const c = client();
    const url = `http://localhost:${portOf(r.url)}/hooks`;
    expect((await post(c, url, false)).statusCode).toBe(200); // leaves a kept-alive socket to 127.0.0.1
    await expect(post(c, url, true)).rejects.toThrow(/Refused/);
    expect(r.received).toHaveLength(1);
  });
});

describe('webhook worker and the address rule', () => {
  it('records a refused live-mode delivery as a failed attempt with the reason, and retries later', async () => {
    const r = await receiver();
    const auth = { appId, livemode: true };
    // Registered while the name looked public; the record now points at the local host, as a
    // re-pointed DNS name would.
    const { endpoint } = await createEndpoint(deps, auth, { url: 'https://shop.example.com/hooks' });
    await tdb.db('webhook_endpoints').where({ id: endpoint.id }).update({ url: `http://localhost:${portOf(r.url)}/hooks` });
    const event = await tdb.db.transaction((trx) => insertEvent(trx, { appId, livemode: true, type: 'payment.succeeded', object: { id: 'pay_1' } }));
    const w = startWebhookWorker(deps, { background: false });
    cleanups.push(() => w.stop());

    expect(await w.runOnce()).toBe(1);
    expect(r.received).toHaveLength(0);
    const d = await tdb.db('webhook_deliveries').where({ event_id: event.id }).first();
    expect(d).toMatchObject({ status: 'pending', attempt_count: 1, last_status_code: null });
    const [a] = await tdb.db('webhook_attempts').where({ delivery_id: d.id });
    expect(a.status_code).toBeNull();
    expect(a.error).toMatch(/^Refused to connect to localhost \((127\.0\.0\.1|::1)\): live-mode webhooks may not reach loopback addresses/);
    expect((await tdb.db('webhook_endpoints').where({ id: endpoint.id }).first()).failing_since).toBeGreaterThan(0);
  });

  it('delivers the same live-mode event when the operator allows private targets', async () => {
    const r = await receiver();
    const opDeps = makeDeps(tdb.db, { allowPrivateWebhooks: true });
    await createEndpoint(opDeps, { appId, livemode: true }, { url: `http://localhost:${portOf(r.url)}/hooks` });
    await tdb.db.transaction((trx) => insertEvent(trx, { appId, livemode: true, type: 'payment.succeeded', object: { id: 'pay_2' } }));
    const w = startWebhookWorker(opDeps, { background: false });
    cleanups.push(() => w.stop());
    expect(await w.runOnce()).toBe(1);
    expect(r.received).toHaveLength(1);
  });
});
