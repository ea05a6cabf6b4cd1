// Child process for the benchmark: a gateway on a fresh SQLite file and a bare Express hello world.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import express from 'express';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../server/config.ts';
import { createLogger } from '../server/log.ts';
import { startGateway } from '../server/index.ts';
import { createApp } from '../server/apps/service.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-bench-'));
const config = loadConfig({}, {
  port: 0,
  databaseUrl: process.env.BENCH_DATABASE_URL ?? `sqlite:${path.join(dir, 'bench.db')}`,
  masterKey: crypto.randomBytes(32).toString('base64'),
  dataDir: dir,
  demo: 'false',
  workers: 'false',
  // Throughput is measured without the per-key and per-IP limits (one key, one client IP).
  apiRateLimit: 0,
  cashierRateLimit: 1_000_000_000,
});
const gateway = await startGateway(config, createLogger('silent'));
const app = await createApp(gateway.deps.db, { name: 'Bench' });
const hello = express();
hello.disable('x-powered-by');
hello.get('/', (_req, res) => {
  res.json({ hello: 'world' });
});
const helloServer = hello.listen(0);
await new Promise((r) => helloServer.once('listening', r));
process.stdout.write(JSON.stringify({
  gateway: gateway.url,
  hello: `http://127.0.0.1:${(helloServer.address() as AddressInfo).port}`,
  key: app.secret_key,
}) + '\n');
process.on('SIGTERM', async () => {
  helloServer.close();
  await gateway.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
});
