// npm run bench (second part): cashier page render against a bare Express hello world, the QR
// view's size over the wire, and how fast a paid status reaches a watching cashier.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import zlib from 'node:zlib';
import autocannon from 'autocannon';
import { loadConfig } from '../server/config.ts';
import { createLogger } from '../server/log.ts';
import { startGateway } from '../server/index.ts';
import { createApp } from '../server/apps/service.ts';
import { getCredentials } from '../server/apps/channel-configs.ts';
import { findMerchant, findOrder } from '../server/sandbox/alipay/store.ts';
import { tradeNotifyParams } from '../server/sandbox/alipay/notify.ts';
import type { AlipayCredentials } from '../server/channels/alipay/index.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const desktop = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const run = (opts: autocannon.Options) =>
  new Promise<autocannon.Result>((resolve, reject) => autocannon({ duration: seconds, connections: 10, ...opts }, (e, r) => (e ? reject(e) : resolve(r))));

async function renderThroughput(): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/servers.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      readline.createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`bench servers exited with ${code}`)));
    });
    const { gateway, hello, key } = JSON.parse(line) as { gateway: string; hello: string; key: string };
    const created = await (await fetch(`${gateway}/v1/payments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 4200, subject: 'Bench tea', out_trade_no: `cashier_${Date.now()}` }),
    })).json();
    const checkout: string = created.checkout_url;
    await run({ url: hello, duration: 2 });
    await run({ url: checkout, duration: 2, headers: { 'user-agent': desktop } });
    // Alternating rounds: a shared machine's speed drifts; each ratio compares neighbours in time.
    const ratios: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      const h = await run({ url: hello });
      const c = await run({ url: checkout, headers: { 'user-agent': desktop } });
      ratios.push(c.requests.average / h.requests.average);
      console.log(`round ${round}: GET hello-world ${h.requests.average.toFixed(0).padStart(6)} req/s (p50 ${h.latency.p50} ms, p99 ${h.latency.p99} ms)   GET /pay/:token ${c.requests.average.toFixed(0).padStart(6)} req/s (p50 ${c.latency.p50} ms, p99 ${c.latency.p99} ms, non-2xx ${c.non2xx})   ${(ratios.at(-1)! * 100).toFixed(1)}%`);
    }
    const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length;
    console.log(`cashier render / hello-world throughput: mean ${(mean * 100).toFixed(1)}%, lowest ${(Math.min(...ratios) * 100).toFixed(1)}% over ${rounds} rounds (goal ≥ 60%)`);

    // The QR view over the wire: HTML with the inline SVG, plus the CSS and JS it loads.
    const page = await (await fetch(checkout, { headers: { 'user-agent': desktop } })).text();
    const formToken = /name="form_token" value="([^"]+)"/.exec(page)![1];
    const chosen = await fetch(`${checkout}/channel`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': desktop },
      body: new URLSearchParams({ form_token: formToken, channel: 'alipay_qr' }),
    });
    const qrRes = await fetch(new URL(chosen.headers.get('location')!, gateway), { headers: { 'user-agent': desktop, 'accept-encoding': 'gzip' } });
    const parts: Array<[string, Buffer, string | null]> = [['QR page (HTML + SVG)', Buffer.from(await qrRes.arrayBuffer()), qrRes.headers.get('content-encoding')]];
    for (const asset of ['/assets/cashier.css', '/assets/cashier.js']) {
      const r = await fetch(gateway + asset, { headers: { 'accept-encoding': 'gzip' } });
      parts.push([asset, Buffer.from(await r.arrayBuffer()), r.headers.get('content-encoding')]);
    }
    let total = 0;
    for (const [name, body, encoding] of parts) {
      // fetch decodes gzip for us; what crossed the wire is that body gzipped again.
      const wire = zlib.gzipSync(body, { level: 6 }).length;
      total += wire;
      console.log(`  ${name.padEnd(22)} ${String(body.length).padStart(6)} B raw  ${String(wire).padStart(6)} B gzip${encoding ? ` (served ${encoding})` : ''}`);
    }
    console.log(`QR view over the wire: ${(total / 1024).toFixed(1)} KB gzipped (budget ≤ 25 KB)`);
  } finally {
    child.kill('SIGTERM');
  }
}

async function statusLatency(samples = 40): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-bench-'));
  const g = await startGateway(loadConfig({}, {
    port: 0, databaseUrl: `sqlite:${path.join(dir, 'b.db')}`, masterKey: crypto.randomBytes(32).toString('base64'), dataDir: dir, demo: 'false', workers: 'false',
  }), createLogger('silent'));
  try {
    const app = await createApp(g.deps.db, { name: 'Bench' });
    const api = async (p: string, body: unknown) =>
      (await fetch(g.url + p, { method: 'POST', headers: { authorization: `Bearer ${app.secret_key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })).json();
    const cred = (await getCredentials(g.deps, app.app_id, 'alipay', false)) as AlipayCredentials;
    const merchant = (await findMerchant(g.deps.db, g.deps.config.masterKeyBytes, cred.appId))!;
    const latencies: number[] = [];
    for (let i = 0; i < samples; i++) {
      const p = await api('/v1/payments', { amount: 100, subject: 'Latency', out_trade_no: `lat_${i}_${Date.now()}` });
      // Paid at the simulator, notify held back: we send the genuine notify ourselves and time it.
      await api(`/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_qr', notify: 'drop' });
      const attempt = await g.deps.db('payment_attempts').where({ payment_id: p.id }).first();
      const order = (await findOrder(g.deps.db, cred.appId, { outTradeNo: attempt.channel_order_no }))!;
      const notify = new URLSearchParams(tradeNotifyParams(merchant, order, crypto.randomBytes(12).toString('hex'))).toString();
      const stream = await fetch(`${p.checkout_url}/events`);
      const reader = stream.body!.getReader();
      let text = '';
      while (!text.includes('"status":"open"')) text += Buffer.from((await reader.read()).value!).toString();
      const t0 = performance.now();
      // Settled here: a reset while the stream is read must not be an unhandled rejection.
      const ack = fetch(`${g.url}/notify/alipay/${app.app_id}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: notify })
        .then((r) => r.text(), (err: Error) => `failed: ${err.message}`);
      while (!text.includes('"status":"succeeded"')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
      latencies.push(performance.now() - t0);
      const answer = await ack;
      if (answer !== 'success') throw new Error(`notify was not accepted: ${answer}`);
    }
    console.log(`notify posted → status on the cashier (SSE), ${samples} payments: p50 ${pct(latencies, 50).toFixed(1)} ms  p99 ${pct(latencies, 99).toFixed(1)} ms  max ${Math.max(...latencies).toFixed(1)} ms (goal ≤ 500 ms)`);
  } finally {
    await g.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await renderThroughput();
await statusLatency();
