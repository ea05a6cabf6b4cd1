// Child process of the scale-out bench (bench/scale.ts): one gateway process on the bench's
// PostgreSQL schema, as `checkstand serve` runs it but with the payment worker off (its active
// query would find the bench's held-back payments paid). It prints `BENCH {"url":…}` once
// listening, and answers 'start' / 'stop' on stdin with its CPU time between the two.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { loadConfig } from '../server/config.ts';
import { createLogger } from '../server/log.ts';
import { startGateway } from '../server/index.ts';
import { startWebhookWorker } from '../server/webhooks/worker.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-bench-scale-'));
const gateway = await startGateway(loadConfig({}, {
  port: 0,
  databaseUrl: process.env.BENCH_DATABASE_URL!,
  databaseSchema: process.env.BENCH_SCHEMA!,
  masterKey: process.env.BENCH_MASTER_KEY!,
  dataDir: dir,
  demo: 'false',
  workers: 'false',
  apiRateLimit: 0,
  allowPrivateWebhooks: 'true',
}), createLogger('warn'));
const webhooks = startWebhookWorker(gateway.deps);
process.stdout.write(`BENCH ${JSON.stringify({ url: gateway.url })}\n`);

let started = process.cpuUsage();
readline.createInterface({ input: process.stdin }).on('line', (cmd) => {
  if (cmd === 'start') {
    started = process.cpuUsage();
    process.stdout.write('BENCH {}\n');
  } else if (cmd === 'stop') {
    const cpu = process.cpuUsage(started);
    process.stdout.write(`BENCH ${JSON.stringify({ cpuUs: cpu.user + cpu.system })}\n`);
  }
});

process.on('SIGTERM', async () => {
  await webhooks.stop();
  await gateway.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
});
