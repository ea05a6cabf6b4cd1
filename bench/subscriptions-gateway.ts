// Child process of the subscriptions bench (bench/subscriptions.ts): one gateway process on the
// bench's PostgreSQL schema, as `checkstand serve` runs it, with its workers (the subscription
// scheduler among them) on or off (BENCH_WORKERS). It prints `BENCH {"url":…}` once listening.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../server/config.ts';
import { createLogger } from '../server/log.ts';
import { startGateway } from '../server/index.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-bench-subs-'));
const gateway = await startGateway(loadConfig({}, {
  port: 0,
  // The balancer in front of the processes: the simulator's notifies and the app's test config name it.
  publicUrl: process.env.BENCH_PUBLIC_URL!,
  databaseUrl: process.env.BENCH_DATABASE_URL!,
  databaseSchema: process.env.BENCH_SCHEMA!,
  masterKey: process.env.BENCH_MASTER_KEY!,
  dataDir: dir,
  demo: 'false',
  workers: process.env.BENCH_WORKERS ?? 'true',
  apiRateLimit: 0,
}), createLogger('warn'));
process.stdout.write(`BENCH ${JSON.stringify({ url: gateway.url, port: (gateway.server.address() as AddressInfo).port })}\n`);

process.on('SIGTERM', async () => {
  await gateway.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
});
