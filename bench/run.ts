// npm run bench: create-payment throughput against a bare Express hello world, in the same run;
// create-with-channel (the direct API places the channel order at once) against the rate of
// RSA-2048 SHA-256 signatures node:crypto makes here (each such create costs at least two: the
// gateway's request signature and the in-process simulator's answer); then notify accepted →
// webhook received at 200 payments per second (bench/webhooks.ts).
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import autocannon from 'autocannon';
import { webhookLatency } from './webhooks.ts';
import { rsaSignaturesPerSecond } from './measure.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);

const child = spawn(process.execPath, ['--import', 'tsx', 'bench/servers.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
const first = await new Promise<string>((resolve, reject) => {
  readline.createInterface({ input: child.stdout! }).once('line', resolve);
  child.once('exit', (code) => reject(new Error(`bench servers exited with ${code}`)));
});
const { gateway, hello, key } = JSON.parse(first) as { gateway: string; hello: string; key: string };

const runId = Date.now().toString(36);
let orderSeq = 0;

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ duration: seconds, connections, ...opts }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

const line = (name: string, r: autocannon.Result) =>
  `${name.padEnd(22)} ${r.requests.average.toFixed(0).padStart(7)} req/s   p50 ${String(r.latency.p50).padStart(4)} ms   p99 ${String(r.latency.p99).padStart(4)} ms   non-2xx ${r.non2xx}   errors ${r.errors}`;

try {
  // Warm both up (JIT, SQLite page cache) before measuring.
  await run({ url: hello, duration: 2 });
  const helloResult = await run({ url: hello });
  const payments = await run({
    url: `${gateway}/v1/payments`,
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    // Merchants number their orders in sequence (date + counter), so the bench does too.
    requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify({ amount: 100, subject: 'Bench order', out_trade_no: `bench_${runId}_${++orderSeq}` }) }) }],
  });
  console.log(`autocannon, ${connections} connections, ${seconds} s each`);
  console.log(line('GET hello-world', helloResult));
  console.log(line('POST /v1/payments', payments));
  const ratio = payments.requests.average / helloResult.requests.average;
  console.log(`create-payment / hello-world throughput: ${(ratio * 100).toFixed(1)}% (goal ≥ 50%)`);
  if (payments.non2xx > 0 || payments.errors > 0) console.log('WARNING: the payment run had failures');

  const signRate = rsaSignaturesPerSecond(Math.min(seconds, 3));
  console.log(`node:crypto RSA-2048 SHA-256 signatures, one thread: ${signRate.toFixed(0)}/s`);
  for (const channel of ['alipay_qr', 'wechat_native']) {
    const body = (n: number) => JSON.stringify({ amount: 100, subject: 'Bench order', out_trade_no: `bench_${runId}_${channel}_${n}`, channel });
    // The app's first payment of a provider provisions its simulator keys: once, before measuring.
    await fetch(`${gateway}/v1/payments`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: body(0) });
    const direct = await run({
      url: `${gateway}/v1/payments`,
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      requests: [{ setupRequest: (req) => ({ ...req, body: body(++orderSeq) }) }],
    });
    console.log(line(`POST channel=${channel}`, direct));
    const share = direct.requests.average / signRate;
    console.log(`create with ${channel} / RSA signatures: ${(share * 100).toFixed(1)}% (goal ≥ 40%)`);
    if (direct.non2xx > 0 || direct.errors > 0) console.log(`WARNING: the ${channel} run had failures`);
  }
} finally {
  child.kill('SIGTERM');
}

await webhookLatency();

