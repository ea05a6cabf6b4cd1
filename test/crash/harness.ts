import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { Knex } from 'knex';
import { onTestFailed } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { createDb } from '../../server/db.ts';

/** Plumbing for the crash tests: one world per test, gateway child processes, a load balancer, a verifying receiver. */

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = path.join(ROOT, 'bin/checkstand.js');

/** Set when the run is on PostgreSQL (`TEST_DATABASE_URL=postgres://...`): the SQLite tests are skipped then, and the other way round. */
export const pgUrl = process.env.TEST_DATABASE_URL?.startsWith('postgres') ? process.env.TEST_DATABASE_URL : undefined;

export type DbKind = 'sqlite' | 'postgres';

export interface CrashWorldOptions {
  kind: DbKind;
  /** Names the temp dir (`checkstand-<name>-crash-…`) and the PostgreSQL schema (`<name>_…`). */
  name: string;
  /** More gateway environment, for every process. */
  env?: NodeJS.ProcessEnv;
}

/** What a crash test runs in: its own database, a balancer, an app made by the CLI, and gateways started on demand. */
export interface CrashWorld {
  dir: string;
  /** The PostgreSQL schema everything lives in; undefined on SQLite. */
  schema: string | undefined;
  databaseUrl: string;
  masterKey: Buffer;
  /** The test's own connection to the gateways' database. */
  db: Knex;
  /** The gateways' environment. */
  env: NodeJS.ProcessEnv;
  balancer: Awaited<ReturnType<typeof startBalancer>>;
  /** Every gateway started, dead or alive, in order. */
  gateways: GatewayProcess[];
  app: { app_id: string; secret_key: string };
  /** The step log, shown when the test fails. */
  steps: string[];
  /** Starts a gateway (with `extraEnv` on top of env) and points the balancer at every live one. */
  up(name: string, extraEnv?: NodeJS.ProcessEnv): Promise<GatewayProcess>;
  /** An API call as the app through the balancer; status 0 when the connection died with its gateway. */
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  /** How many api() calls died with their gateway so far. */
  died(): number;
  /** Adds `what` to the step log, with the seconds since the world was made. */
  step(what: string): void;
  /** Seconds since the world was made, to a tenth. */
  seconds(): string;
  /** Runs `fn` at the end, after the gateways are stopped and before the balancer closes (the last deferred first). */
  defer(fn: () => Promise<void> | void): void;
}

/**
 * Runs `fn` in a fresh crash world and takes it all down afterwards, whatever happened: gateways
 * stopped, balancer closed, schema dropped, files removed. When the test fails, the step log and
 * the gateways' last log lines are printed.
 */
export async function withCrashWorld<T>(opts: CrashWorldOptions, fn: (w: CrashWorld) => Promise<T>): Promise<T> {
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `checkstand-${opts.name}-crash-`));
  const schema = opts.kind === 'postgres' ? `${opts.name}_${crypto.randomBytes(5).toString('hex')}` : undefined;
  if (schema && !pgUrl) throw new Error('a PostgreSQL crash world needs TEST_DATABASE_URL=postgres://...');
  const databaseUrl = schema ? pgUrl! : `sqlite:${path.join(dir, 'crash.db')}`;
  const masterKey = crypto.randomBytes(32);
  const balancer = await startBalancer();
  const db = createDb(databaseUrl, { schema, pool: { max: 2 } });
  const gateways: GatewayProcess[] = [];
  const steps: string[] = [];
  const deferred: Array<() => Promise<void> | void> = [];
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
  onTestFailed(() => console.log([...steps, ...gateways.flatMap((g) => g.log).slice(-60)].join('\n')));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PUBLIC_URL: balancer.url,
    DATABASE_URL: databaseUrl,
    CHECKSTAND_DATA_DIR: dir,
    CHECKSTAND_MASTER_KEY: masterKey.toString('base64'),
    LOG_LEVEL: 'warn',
    CHECKSTAND_DEMO: 'false',
    // Crash tests send many calls at once, far above the default per-key limit, which is not what they test.
    CHECKSTAND_API_RATE_LIMIT: '0',
    ...opts.env,
    ...(schema ? { DATABASE_SCHEMA: schema } : {}),
  };
  try {
    // The CLI reads DATABASE_URL only, so on PostgreSQL the schema goes in as libpq options.
    let cliEnv = env;
    if (schema) {
      await db.raw('CREATE SCHEMA ??', [schema]);
      cliEnv = { ...env, DATABASE_URL: `${pgUrl}${pgUrl!.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}` };
    }
    const app = await createAppWithCli(cliEnv);
    let died = 0;
    return await fn({
      dir, schema, databaseUrl, masterKey, db, env, balancer, gateways, app, steps,
      async up(name, extraEnv = {}) {
        const g = await spawnGateway(name, { ...env, ...extraEnv });
        gateways.push(g);
        balancer.setBackends(gateways.filter((x) => x.child.exitCode === null && x.child.signalCode === null).map((x) => x.port));
        return g;
      },
      async api(method, p, body, headers = {}) {
        try {
          const res = await fetch(balancer.url + p, {
            method,
            headers: { authorization: `Bearer ${app.secret_key}`, 'content-type': 'application/json', ...headers },
            body: body === undefined ? undefined : JSON.stringify(body),
            signal: AbortSignal.timeout(20_000),
          });
          return { status: res.status, body: await res.json().catch(() => null) };
        } catch {
          died++;
          return { status: 0, body: null }; // the connection died with its gateway
        }
      },
      died: () => died,
      step: (what) => void steps.push(`${seconds()} s ${what}`),
      seconds,
      defer: (cleanup) => void deferred.push(cleanup),
    });
  } finally {
    for (const g of gateways) await g.kill('SIGTERM');
    for (const cleanup of deferred.reverse()) await cleanup();
    await balancer.close();
    if (schema) await db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [schema]);
    await db.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** `checkstand app create --json` against the database the gateways will use. */
export async function createAppWithCli(env: NodeJS.ProcessEnv): Promise<{ app_id: string; secret_key: string }> {
  const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'app', 'create', '--name', 'Crash shop', '--json'], { env, cwd: ROOT });
  return JSON.parse(stdout);
}

export interface GatewayProcess {
  name: string;
  port: number;
  child: ChildProcess;
  log: string[];
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** `node bin/checkstand.js serve` as a child process; resolves once it answers HTTP. */
export async function spawnGateway(name: string, env: NodeJS.ProcessEnv): Promise<GatewayProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'serve'], { env: { ...env, PORT: String(port) }, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const keep = (b: Buffer) => log.push(...b.toString().split('\n').filter(Boolean).map((l) => `[${name}] ${l}`));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${log.join('\n')}`);
    try {
      // startGateway listens before its request handler is attached (it connects the bus in
      // between); a request in that window is never answered, so each probe has a deadline.
      const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${name} did not start:\n${log.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name,
    port,
    child,
    log,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      // A graceful stop that hangs must not hang the test run.
      const force = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(force);
    },
  };
}

/**
 * A TCP load balancer in front of the gateway processes, as in production: PUBLIC_URL points at
 * it, so the simulators' notifies and the API calls reach whichever instance is alive.
 */
export async function startBalancer() {
  let backends: number[] = [];
  let next = 0;
  const server = net.createServer((client) => {
    client.pause();
    client.on('error', () => undefined);
    const attempt = (left: number) => {
      if (left <= 0 || backends.length === 0) return client.destroy();
      const up = net.connect(backends[next++ % backends.length], '127.0.0.1');
      let connected = false;
      up.once('connect', () => {
        connected = true;
        client.pipe(up).pipe(client);
        client.resume();
      });
      up.on('error', () => (connected ? client.destroy() : attempt(left - 1)));
      up.on('close', () => connected && client.destroy());
      client.on('close', () => up.destroy());
    };
    attempt(backends.length);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    setBackends(ports: number[]) {
      backends = ports;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export interface Delivery {
  id: string;
  body: string;
  verified: boolean;
  /** The gateway process that sent it, when /proc tells. */
  pid: number | undefined;
}

/**
 * The merchant's endpoint: verifies each delivery with `standardwebhooks` and answers 200 after
 * `delayMs`, so deliveries are in flight when a gateway is killed.
 */
export async function startVerifyingReceiver(opts: { delayMs: number; pids: () => number[] }) {
  const deliveries: Delivery[] = [];
  let secret = '';
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let verified = false;
      try {
        new Webhook(secret).verify(body, req.headers as Record<string, string>);
        verified = true;
      } catch {
        // recorded as unverified
      }
      deliveries.push({ id: String(req.headers['webhook-id']), body, verified, pid: (req.socket as net.Socket & { pid?: number }).pid });
      setTimeout(() => res.writeHead(verified ? 200 : 400).end(), opts.delayMs);
    });
  });
  server.on('connection', (socket: net.Socket & { pid?: number }) => {
    socket.pid = pidOfPeer(socket.remotePort!, opts.pids());
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/hooks`,
    deliveries,
    setSecret(s: string) {
      secret = s;
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** Which of `pids` owns the local TCP port `port` (Linux /proc); undefined elsewhere. */
function pidOfPeer(port: number, pids: number[]): number | undefined {
  try {
    const inodes = new Set<string>();
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
      for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length > 9 && parseInt(f[1].split(':')[1], 16) === port) inodes.add(f[9]);
      }
    }
    for (const pid of pids) {
      let fds: string[];
      try {
        fds = fs.readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue; // a killed process
      }
      for (const fd of fds) {
        let target = '';
        try {
          target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: 'utf8' });
        } catch {
          // closed meanwhile
        }
        const m = /^socket:\[(\d+)\]$/.exec(target);
        if (m && inodes.has(m[1])) return pid;
      }
    }
  } catch {
    // not Linux
  }
  return undefined;
}

/** Runs fn over items with at most `limit` at once. */
export async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) await fn(items[i++]);
  }));
}

export async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
