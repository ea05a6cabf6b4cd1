// Child process of bench/console.ts: one gateway on the seeded database (no workers), so the RSS
// the bench samples is the gateway's alone. Prints `BENCH {"url":…,"pid":…}` once listening.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../server/config.ts';
import { createLogger } from '../server/log.ts';
import { startGateway } from '../server/index.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-bench-console-'));
const gateway = await startGateway(loadConfig({}, {
  port: 0,
  databaseUrl: process.env.BENCH_DATABASE_URL!,
  databaseSchema: process.env.BENCH_SCHEMA || undefined,
  masterKey: process.env.BENCH_MASTER_KEY!,
  dataDir: dir,
  demo: 'false',
  workers: 'false',
  apiRateLimit: 0,
  cashierRateLimit: 1_000_000_000,
}), createLogger('warn'));
process.stdout.write(`BENCH ${JSON.stringify({ url: gateway.url, pid: process.pid })}\n`);

process.on('SIGTERM', async () => {
  await gateway.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
});
