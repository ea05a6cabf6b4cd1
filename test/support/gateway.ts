import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import knexFactory from 'knex';
import { loadConfig } from '../../server/config.ts';
import { createLogger } from '../../server/log.ts';
import { startGateway, type Gateway } from '../../server/index.ts';
import { createApp, type CreatedApp } from '../../server/apps/service.ts';

/** postgres://… when the run targets PostgreSQL (CI's second pass), else undefined (SQLite). */
export const pgUrl = process.env.TEST_DATABASE_URL?.startsWith('postgres') ? process.env.TEST_DATABASE_URL : undefined;

export interface TestGateway extends Gateway {
  app: CreatedApp;
  /** fetch against the gateway with the app's test key. */
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

/**
 * Starts a whole gateway in-process on port 0 against a fresh database: a temporary SQLite file,
 * or a fresh PostgreSQL schema dropped afterwards, so runs never see each other.
 */
export async function startTestGateway(opts: { workers?: boolean; logLines?: string[]; sameDatabaseAs?: TestGateway; apiRateLimit?: number; demo?: boolean; sandbox?: boolean } = {}): Promise<TestGateway> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-test-'));
  const peer = opts.sameDatabaseAs?.deps.config;
  const schema = peer ? peer.databaseSchema : pgUrl ? `t_${crypto.randomBytes(6).toString('hex')}` : undefined;
  const config = loadConfig({}, {
    port: 0,
    databaseUrl: peer?.databaseUrl ?? pgUrl ?? `sqlite:${path.join(dir, 'test.db')}`,
    databaseSchema: schema,
    masterKey: peer ? peer.masterKeyBytes.toString('base64') : crypto.randomBytes(32).toString('base64'),
    // A second process of one deployment sits behind the same PUBLIC_URL: the channels (and the
    // simulators, which only call the gateway's own addresses) know one notify URL per app.
    publicUrl: peer?.publicUrl,
    dataDir: dir,
    logLevel: 'debug',
    workers: opts.workers === false ? 'false' : 'true',
    demo: opts.demo ? 'true' : 'false',
    sandbox: opts.sandbox === false ? 'false' : 'true',
    // Tests fire bursts far above any merchant's rate; the limiter has a test of its own.
    apiRateLimit: opts.apiRateLimit ?? 0,
    cashierRateLimit: 1_000_000,
  });
  const lines = opts.logLines ?? [];
  const logger = createLogger('debug', (l) => lines.push(l));
  const started = await startGateway(config, logger);
  // This process's own address: a second instance shares its peer's PUBLIC_URL but is reached here.
  const g = { ...started, url: `http://localhost:${(started.server.address() as AddressInfo).port}` };
  const app = opts.sameDatabaseAs?.app ?? (await createApp(g.deps.db, { name: 'Test Shop', origins: ['http://127.0.0.1:4000'] }));
  const api: TestGateway['api'] = async (method, p, body, headers = {}) => {
    const res = await fetch(g.url + p, {
      method,
      headers: { authorization: `Bearer ${app.secret_key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try { parsed = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  return {
    ...g,
    app,
    api,
    async close() {
      await g.stop();
      if (schema && pgUrl && !peer) {
        const admin = knexFactory({ client: 'pg', connection: pgUrl });
        await admin.raw(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await admin.destroy();
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
