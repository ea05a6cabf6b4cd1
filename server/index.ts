import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import http, { type Server } from 'node:http';
import { loadConfig, type Config } from './config.ts';
import { createDb, isPostgres, migrate } from './db.ts';
import { startCheckpointer, type Checkpointer } from './sqlite-checkpointer.ts';
import { createLogger, type Logger } from './log.ts';
import { createLocalBus, createPgBus } from './bus.ts';
import { createApp } from './app.ts';
import { createApp as createMerchantApp, type CreatedApp } from './apps/service.ts';
import { startWebhookWorker } from './webhooks/worker.ts';
import { startPaymentWorker } from './payments/worker.ts';
import type { Deps } from './deps.ts';
import type { SandboxDeps } from './sandbox/types.ts';
import { acceptWechatpaySandboxTls } from './sandbox/wechatpay/index.ts';

export interface Gateway {
  deps: Deps;
  server: Server;
  url: string;
  demo?: CreatedApp;
  stop(): Promise<void>;
}

/** The SQLite checkpoint thread starts this long after the server. */
const CHECKPOINTER_DELAY_MS = 3000;

/**
 * Creates the demo app on an empty database and writes its key to data/demo-app.json. It is a
 * test-mode app only: a live key would sit in a plain file for an app nobody set up for real
 * money (live payments belong to an app made with `checkstand app create`).
 */
async function ensureDemoApp(deps: Deps): Promise<CreatedApp | undefined> {
  const count = await deps.db('apps').count<{ n: number }[]>({ n: '*' });
  if (Number(count[0].n) > 0) return undefined;
  const demo = await createMerchantApp(deps.db, { name: 'Demo Shop', origins: ['http://localhost:4000', 'http://127.0.0.1:4000'], live: false });
  fs.mkdirSync(deps.config.dataDir, { recursive: true });
  fs.writeFileSync(path.join(deps.config.dataDir, 'demo-app.json'), JSON.stringify(demo, null, 2) + '\n', { mode: 0o600 });
  return demo;
}

/** Process entry for `checkstand serve`: config, db, migrate, http, workers, graceful shutdown. */
export async function startGateway(baseConfig: Config = loadConfig(), logger: Logger = createLogger(baseConfig.logLevel)): Promise<Gateway> {
  const db = createDb(baseConfig.databaseUrl, { schema: baseConfig.databaseSchema });
  await migrate(db);
  // Listen first: with PORT=0 the public URL is only known once the port is. Until the app is
  // built, requests get a 503 rather than no answer at all.
  let handler: http.RequestListener | undefined;
  const server = http.createServer((req, res) => {
    if (handler) return handler(req, res);
    res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' }).end('Starting up\n');
  });
  // The WeChat Pay API v2 simulator takes mutual TLS on this same port (sandbox/wechatpay/v2-tls.ts),
  // so the v2 URL stored in test configs holds across restarts and on port 0.
  let sandboxDeps: SandboxDeps | undefined;
  if (baseConfig.sandbox) acceptWechatpaySandboxTls(server, () => sandboxDeps);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(baseConfig.port, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const config = baseConfig.publicUrl.endsWith(':0') ? { ...baseConfig, publicUrl: `http://localhost:${port}` } : baseConfig;
  const bus = isPostgres(db) ? await createPgBus(config.databaseUrl, config.databaseSchema, logger) : createLocalBus();
  const deps: Deps = { db, config, logger, bus };
  sandboxDeps = { db, publicUrl: config.publicUrl, masterKey: config.masterKeyBytes, logger };
  const sqliteFile = config.databaseUrl.startsWith('sqlite:') ? config.databaseUrl.slice('sqlite:'.length) : undefined;
  // Started a little after the server is up: a thread and its own SQLite connection are start-up
  // CPU that the first requests do not need (SQLite checkpoints by itself until then).
  let checkpointer: Checkpointer | undefined;
  const checkpointerTimer = sqliteFile && sqliteFile !== ':memory:'
    ? setTimeout(() => (checkpointer = startCheckpointer(db, sqliteFile)), CHECKPOINTER_DELAY_MS).unref()
    : undefined;
  const demo = config.demo ? await ensureDemoApp(deps) : undefined;
  handler = createApp(deps);
  const webhooks = config.workers ? startWebhookWorker(deps) : undefined;
  const payments = config.workers ? startPaymentWorker(deps) : undefined;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // Open event streams would hold close() forever: end every connection once new ones are refused.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await webhooks?.stop();
      await payments?.stop();
      await bus.close();
      clearTimeout(checkpointerTimer);
      await checkpointer?.stop();
      await db.destroy();
    })());
  return { deps, server, url: deps.config.publicUrl, demo, stop };
}

/** What `checkstand serve` prints at start; `write` is the standard output unless a test listens. */
export function printBanner(g: Gateway, write: (text: string) => void = (t) => void process.stdout.write(t)): void {
  const out = (s = '') => write(s + '\n');
  out(`Checkstand is listening on ${g.url}  (database: ${g.deps.config.databaseUrl.replace(/\/\/[^@]*@/, '//…@')})`);
  if (!g.demo) {
    out('Demo app keys: see data/demo-app.json (created on the first start).');
    return;
  }
  out();
  out('A demo app was created; it has test mode only (payments go to the built-in channel simulators):');
  out(`  app_id      ${g.demo.app_id}`);
  out(`  secret_key  ${g.demo.secret_key}   (also in data/demo-app.json)`);
  out();
  out('Try it:');
  out(`  curl -s ${g.url}/v1/payments -H "Authorization: Bearer ${g.demo.secret_key}" \\`);
  out(`    -H "Content-Type: application/json" -d '{"amount":100,"subject":"Test order","out_trade_no":"order_1","return_url":"${g.url}/"}'`);
  out('  then open the checkout_url it returns in a browser and pay with Alipay or WeChat Pay.');
  out();
  out(`Console: ${g.url}/console  (first: npx checkstand user create --email you@example.com --app ${g.demo.app_id})`);
  out('For live payments, create your own app: npx checkstand app create --name "Your shop" --origin https://your-shop.example');
}
