import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { z } from 'zod';

/** Every setting Checkstand reads, with its environment variable and a line of doc. */
const schema = z.object({
  /** PORT: HTTP port of the gateway (0 picks a free one). */
  port: z.coerce.number().int().min(0).max(65535).default(3000),
  /** PUBLIC_URL: the gateway's public origin; checkout_url, notify_url and return URLs are built on it. */
  publicUrl: z.string().url().optional(),
  /** DATABASE_URL: `sqlite:<file path>` (default sqlite:./data/checkstand.db) or `postgres://…`. */
  databaseUrl: z
    .string()
    .regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/, 'must be sqlite:<path> or postgres://…')
    .default('sqlite:./data/checkstand.db'),
  /** DATABASE_SCHEMA: PostgreSQL only, the schema to use (created if missing); default public. */
  databaseSchema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a plain lower-case identifier').optional(),
  /** CHECKSTAND_MASTER_KEY: 32 bytes (base64 or hex) that encrypt channel credentials and webhook secrets. */
  masterKey: z.string().optional(),
  /** CHECKSTAND_DATA_DIR: where the development master key and demo-app.json are written. */
  dataDir: z.string().default('./data'),
  /** LOG_LEVEL: debug, info, warn, error or silent. */
  logLevel: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  /** CHECKSTAND_WORKERS: run the background workers (webhook delivery, query, expiry) in this process. */
  workers: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /** CHECKSTAND_ALLOW_PRIVATE_WEBHOOKS: let live-mode webhooks target private addresses (operator's choice). */
  allowPrivateWebhooks: z.enum(['true', 'false']).default('false').transform((v) => v === 'true'),
  /** CHECKSTAND_API_RATE_LIMIT: API requests per second per secret key and process (0 = no limit). */
  apiRateLimit: z.coerce.number().int().min(0).default(100),
  /** CHECKSTAND_CASHIER_RATE_LIMIT: cashier steps that reach a channel (placing orders, OAuth, return queries), per minute per client IP and process. */
  cashierRateLimit: z.coerce.number().int().min(1).default(60),
  /**
   * TRUST_PROXY: behind a reverse proxy, which X-Forwarded-For hops to believe for the client IP
   * (WeChat H5 needs the payer's IP; rate limits count per IP): false (default), a hop count, or
   * comma-separated addresses/CIDRs such as loopback,10.0.0.0/8.
   */
  trustProxy: z
    .string()
    .regex(/^(false|true|\d{1,2}|[\w.:/,\s-]+)$/, 'must be false, true, a hop count, or addresses/CIDRs')
    .default('false')
    .transform((v): boolean | number | string[] => (v === 'false' ? false : v === 'true' ? true : /^\d+$/.test(v) ? Number(v) : v.split(',').map((x) => x.trim()).filter(Boolean))),
  /**
   * CHECKSTAND_SANDBOX: mount the channel simulators at /sandbox. Test-mode payments of apps
   * without test credentials of their own need them (merchants test with test keys against the
   * production gateway, as with Stripe); with false those payments and the simulate helper get
   * a clear error instead.
   */
  sandbox: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
  /**
   * CHECKSTAND_MONEY_OUT_LEASE_SECONDS: how long a process that submits a transfer or red packet
   * holds it; if the process dies, the worker takes it over (query first, then the same number) after this.
   */
  moneyOutLeaseSeconds: z.coerce.number().int().min(1).max(3600).default(60),
  /**
   * CHECKSTAND_CHANNEL_MESSAGE_RETENTION_DAYS: how long the recorded channel messages (notifies,
   * returns, the gateway's calls: a payment's timeline in the console) are kept; events have no
   * retention of their own (kept, never pruned), so this is the one period.
   */
  channelMessageRetentionDays: z.coerce.number().int().min(1).max(3650).default(180),
  /** CHECKSTAND_DEMO: create the demo app on an empty database. */
  demo: z.enum(['true', 'false']).default('true').transform((v) => v === 'true'),
});

export type Config = z.infer<typeof schema> & { publicUrl: string; masterKeyBytes: Buffer };

const envNames: Record<string, string> = {
  port: 'PORT',
  publicUrl: 'PUBLIC_URL',
  databaseUrl: 'DATABASE_URL',
  databaseSchema: 'DATABASE_SCHEMA',
  masterKey: 'CHECKSTAND_MASTER_KEY',
  dataDir: 'CHECKSTAND_DATA_DIR',
  logLevel: 'LOG_LEVEL',
  workers: 'CHECKSTAND_WORKERS',
  moneyOutLeaseSeconds: 'CHECKSTAND_MONEY_OUT_LEASE_SECONDS',
  allowPrivateWebhooks: 'CHECKSTAND_ALLOW_PRIVATE_WEBHOOKS',
  apiRateLimit: 'CHECKSTAND_API_RATE_LIMIT',
  cashierRateLimit: 'CHECKSTAND_CASHIER_RATE_LIMIT',
  trustProxy: 'TRUST_PROXY',
  sandbox: 'CHECKSTAND_SANDBOX',
  demo: 'CHECKSTAND_DEMO',
  channelMessageRetentionDays: 'CHECKSTAND_CHANNEL_MESSAGE_RETENTION_DAYS',
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads and validates configuration; throws ConfigError with a one-line reason naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof typeof envNames, unknown>> = {}): Config {
  const raw: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(envNames)) {
    const v = env[name];
    if (v !== undefined && v !== '') raw[key] = v;
  }
  Object.assign(raw, overrides);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue.path[0]);
    throw new ConfigError(`${envNames[key] ?? key}: ${issue.message}`);
  }
  const c = parsed.data;
  const publicUrl = (c.publicUrl ?? `http://localhost:${c.port}`).replace(/\/+$/, '');
  return { ...c, publicUrl, masterKeyBytes: resolveMasterKey(c.masterKey, c.dataDir) };
}

function decodeKey(value: string): Buffer | null {
  if (/^[0-9a-fA-F]{64}$/.test(value)) return Buffer.from(value, 'hex');
  const b = Buffer.from(value, 'base64');
  return b.length === 32 ? b : null;
}

/** The master key from the environment, or for development one generated once into the data dir. */
function resolveMasterKey(value: string | undefined, dataDir: string): Buffer {
  if (value) {
    const key = decodeKey(value);
    if (!key) throw new ConfigError('CHECKSTAND_MASTER_KEY: must be 32 bytes, as 64 hex digits or base64');
    return key;
  }
  const file = path.join(dataDir, 'master.key');
  if (fs.existsSync(file)) {
    const key = decodeKey(fs.readFileSync(file, 'utf8').trim());
    if (!key) throw new ConfigError(`CHECKSTAND_MASTER_KEY: ${file} does not hold a 32-byte key`);
    return key;
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const key = crypto.randomBytes(32);
  fs.writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600 });
  return key;
}
