// Child process of the webhook bench: a gateway on a fresh SQLite file with its webhook worker,
// an endpoint at the bench's receiver, BENCH_WEBHOOK_COUNT payments paid at the simulator with
// their notify held back, and BENCH_WEBHOOK_EXTRA more like them (see below). It prints one JSON
// line: the signed notifies for the bench to post, in that order.
import fs from 'node:fs';
import readline from 'node:readline';
import inspector from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { loadConfig } from '../server/config.ts';
import { createLogger } from '../server/log.ts';
import { startGateway } from '../server/index.ts';
import { createApp } from '../server/apps/service.ts';
import { getCredentials } from '../server/apps/channel-configs.ts';
import { findMerchant, findOrder, type SandboxOrder } from '../server/sandbox/alipay/store.ts';
import { tradeNotifyParams } from '../server/sandbox/alipay/notify.ts';
import { startWebhookWorker } from '../server/webhooks/worker.ts';
import type { AlipayCredentials } from '../server/channels/alipay/index.ts';

const receiverUrl = process.env.BENCH_WEBHOOK_URL!;
const count = Number(process.env.BENCH_WEBHOOK_COUNT ?? 2000);
const extra = Number(process.env.BENCH_WEBHOOK_EXTRA ?? 0);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-bench-wh-'));
const gateway = await startGateway(loadConfig({}, {
  port: 0,
  databaseUrl: `sqlite:${path.join(dir, 'bench.db')}`,
  masterKey: crypto.randomBytes(32).toString('base64'),
  dataDir: dir,
  demo: 'false',
  // The payment worker stays off: its active query would find the held-back payments paid
  // before the bench's notify arrives. The webhook worker runs as `serve` runs it.
  workers: 'false',
  apiRateLimit: 0,
}), createLogger('warn'));
const webhooks = startWebhookWorker(gateway.deps);
const app = await createApp(gateway.deps.db, { name: 'Bench' });

/** An API call; a request that fails on the way (a reset under load) is sent again with its idempotency key. */
async function api(p: string, body: unknown): Promise<any> {
  const key = crypto.randomUUID();
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(gateway.url + p, {
        method: 'POST',
        headers: { authorization: `Bearer ${app.secret_key}`, 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify(body),
      });
      const json = await res.json();
      if (res.status === 409 && attempt < 5) { // the first try is still being processed
        await new Promise((r) => setTimeout(r, 100 * attempt));
        continue;
      }
      if (!res.ok) throw new Error(`${p}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    } catch (err) {
      if (attempt >= 5 || (err as Error).message.startsWith(p)) throw err;
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}

const endpoint = await api('/v1/webhook_endpoints', { url: receiverUrl, enabled_events: ['payment.succeeded'] });
const ids: string[] = [];
let next = 0;
await Promise.all(Array.from({ length: 10 }, async () => {
  while (next < count) {
    const i = next++;
    const p = await api('/v1/payments', { amount: 100 + (i % 900), subject: 'Bench tea', out_trade_no: `whbench_${i}` });
    await api(`/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc', notify: 'drop' });
    ids.push(p.id);
  }
}));
const cred = (await getCredentials(gateway.deps, app.app_id, 'alipay', false)) as AlipayCredentials;
const merchant = (await findMerchant(gateway.deps.db, gateway.deps.config.masterKeyBytes, cred.appId))!;
const notifies = [];
const db = gateway.deps.db;
let template: { attempt: any; order: SandboxOrder } | undefined;
for (const id of ids) {
  const attempt = await db('payment_attempts').where({ payment_id: id }).first();
  const order = (await findOrder(db, cred.appId, { outTradeNo: attempt.channel_order_no }))!;
  template ??= { attempt, order };
  notifies.push({ payment: id, body: new URLSearchParams(tradeNotifyParams(merchant, order, crypto.randomBytes(12).toString('hex'))).toString() });
}
// The ladder's payments: created through the API like the others, but their attempt and paid
// trade are copies of a simulated one with fresh numbers (the simulator's round trips and RSA
// signatures would take minutes). The gateway's notify path never asks the simulator, so what
// it handles is the same: a stored attempt and a notify signed with the merchant's Alipay key.
next = 0;
await Promise.all(Array.from({ length: 4 }, async () => {
  while (next < extra) {
    const i = count + next++;
    const amount = 100 + (i % 900);
    const p = await api('/v1/payments', { amount, subject: 'Bench tea', out_trade_no: `whbench_${i}` });
    const orderNo = `cs${crypto.randomBytes(15).toString('hex')}`;
    await db('payment_attempts').insert({ ...template!.attempt, id: `att_bench${i}`, payment_id: p.id, channel_order_no: orderNo, created: Math.floor(Date.now() / 1000), updated_ms: Date.now() });
    const order: SandboxOrder = { ...template!.order, outTradeNo: orderNo, tradeNo: `2026${String(i).padStart(24, '0')}`, amount };
    notifies.push({ payment: p.id, body: new URLSearchParams(tradeNotifyParams(merchant, order, crypto.randomBytes(12).toString('hex'))).toString() });
  }
}));
process.stdout.write('BENCH ' + JSON.stringify({ notifyUrl: `${gateway.url}/notify/alipay/${app.app_id}`, secret: endpoint.secret, notifies }) + '\n');

// The bench measures the gateway's CPU over the notify phase alone: 'start' and 'stop' on stdin
// (each answered with a line). Lines for the bench start with 'BENCH '; the rest is the gateway's log. BENCH_PROFILE=FILE also profiles that phase alone.
let startedCpu = process.cpuUsage();
let startedMs = Date.now();
// How long the event loop was blocked (a synchronous commit or checkpoint, a long GC).
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
let session: inspector.Session | undefined;
readline.createInterface({ input: process.stdin }).on('line', async (cmd) => {
  if (cmd === 'start') {
    if (process.env.BENCH_PROFILE) {
      session = new inspector.Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    startedCpu = process.cpuUsage();
    startedMs = Date.now();
    loopDelay.reset();
    process.stdout.write('BENCH {}\n');
  } else if (cmd === 'stop') {
    const cpu = process.cpuUsage(startedCpu);
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      fs.writeFileSync(process.env.BENCH_PROFILE!, JSON.stringify(profile));
      session.disconnect();
    }
    // The worker's view of each delivery: request sent → answer read, as recorded.
    const latencies = (await db('webhook_attempts').where('attempted_at_ms', '>=', startedMs).select('latency_ms')).map((r) => Number(r.latency_ms)).sort((a, b) => a - b);
    const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? null;
    process.stdout.write('BENCH ' + JSON.stringify({
      cpuUs: cpu.user + cpu.system,
      loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
      loopDelayMaxMs: loopDelay.max / 1e6,
      deliveryP50Ms: at(0.5),
      deliveryP99Ms: at(0.99),
    }) + '\n');
  }
});

process.on('SIGTERM', async () => {
  await webhooks.stop();
  await gateway.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
});
