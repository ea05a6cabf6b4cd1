// npm run bench: create-payment throughput against a bare Express hello world, in the same run;
// then notify accepted → webhook received at 200 payments per second (bench/webhooks.ts).
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import autocannon from 'autocannon';
import { webhookLatency } from './webhooks.ts';

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
} finally {
  child.kill('SIGTERM');
}

await webhookLatency();
