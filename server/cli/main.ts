import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.ts';
import { createDb, migrate } from '../db.ts';
import { createLogger } from '../log.ts';
import { createLocalBus } from '../bus.ts';
import { createApp } from '../apps/service.ts';
import { parseOrigin } from '../apps/origins.ts';
import { setChannelConfig } from '../apps/channel-configs.ts';
import { checkChannelCredentials } from '../apps/credential-check.ts';
import { createEndpoint } from '../webhooks/service.ts';
import { channelFor, isProvider } from '../channels/registry.ts';
import { createConsoleUser } from '../dashboard/users.ts';
import { isRole } from '../dashboard/roles.ts';
import { recordAudit } from '../audit/repo.ts';
import { listKeys, revokeKey, rollKey, MAX_ROLL_OVERLAP_S } from '../api-keys/service.ts';
import { checkPasswordStrength } from '../dashboard/password.ts';
import { readPassword } from './prompt.ts';
import { printBanner, startGateway } from '../index.ts';
import { ZodError } from 'zod';

const usage = `Usage: checkstand <command>
  serve                                   migrate, then run the gateway and its workers
  migrate                                 bring the database schema up to date
  app create --name N [--webhook-url U] [--origin O]... [--json]
  channel set --app ID --channel alipay|wechatpay|unionpay|paypal|stripe --mode test|live --config FILE
  channel check --app ID --channel C --mode test|live   parse, key pair, certificates, then a signed query for a made-up order (exit 1 on a failed step)
  user create --email E --app ID [--password P] [--role R]   console user (owner unless --role admin|developer|viewer); asks for the password when not given
  key list --app ID [--mode test|live]
  key roll --app ID --mode test|live [--key KEY_ID] [--expires-in 24h]   the old key works that long more (≤ 7d; default 0: it stops now)
  key revoke --app ID --mode test|live --key KEY_ID`;

class UsageError extends Error {}

/** How bin/checkstand.js started the command. */
export interface Runtime {
  /** Set when the TypeScript sources run (through tsx) instead of dist/: why. */
  fromSources?: string;
}

/** The `checkstand` command. Errors print one line and exit non-zero. */
export async function main(argv: string[], runtime: Runtime = {}): Promise<void> {
  try {
    await run(argv, runtime);
  } catch (err) {
    const msg = err instanceof ZodError ? err.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`)[0] : (err as Error).message;
    process.stderr.write(`checkstand: ${msg}\n`);
    if (err instanceof UsageError) process.stderr.write(usage + '\n');
    process.exit(err instanceof ConfigError || err instanceof UsageError ? 2 : 1);
  }
}

async function run(argv: string[], runtime: Runtime): Promise<void> {
  const [cmd, sub] = argv;
  if (!cmd || cmd === '--help' || cmd === 'help') {
    process.stdout.write(usage + '\n');
    return;
  }
  if (cmd === 'serve') return serve(runtime);
  const config = loadConfig();
  const db = createDb(config.databaseUrl, { schema: config.databaseSchema });
  try {
    await migrate(db);
    if (cmd === 'migrate') {
      process.stdout.write('database is up to date\n');
    } else if (cmd === 'app' && sub === 'create') {
      const { values } = parseArgs({
        args: argv.slice(2),
        options: { name: { type: 'string' }, 'webhook-url': { type: 'string' }, origin: { type: 'string', multiple: true }, json: { type: 'boolean' } },
      });
      if (!values.name) throw new UsageError('--name is required');
      for (const origin of values.origin ?? []) {
        const parsed = parseOrigin(origin);
        if (!parsed.ok) throw new UsageError(`--origin ${JSON.stringify(origin)} is not an origin: ${parsed.reason}`);
      }
      const app = await createApp(db, { name: values.name, origins: values.origin });
      let webhook_secret: string | undefined;
      if (values['webhook-url']) {
        const deps = { db, config, logger: createLogger('silent'), bus: createLocalBus() };
        webhook_secret = (await createEndpoint(deps, { appId: app.app_id, livemode: false }, { url: values['webhook-url'], enabled_events: ['*'] })).secret;
      }
      const out = { app_id: app.app_id, secret_key: app.secret_key, live_secret_key: app.live_secret_key, webhook_secret: webhook_secret ?? null };
      process.stdout.write(values.json ? JSON.stringify(out) + '\n' : Object.entries(out).map(([k, v]) => `${k}: ${v ?? '-'}`).join('\n') + '\n');
    } else if (cmd === 'channel' && sub === 'set') {
      const { values } = parseArgs({
        args: argv.slice(2),
        options: { app: { type: 'string' }, channel: { type: 'string' }, mode: { type: 'string' }, config: { type: 'string' } },
      });
      if (!values.app || !values.channel || !values.mode || !values.config) throw new UsageError('--app, --channel, --mode and --config are required');
      if (!isProvider(values.channel)) throw new UsageError('--channel must be alipay, wechatpay, unionpay, paypal or stripe');
      if (values.mode !== 'test' && values.mode !== 'live') throw new UsageError('--mode must be test or live');
      if (!(await db('apps').where({ id: values.app }).first())) throw new Error(`no such app: ${values.app}`);
      let raw: unknown;
      try {
        raw = JSON.parse(fs.readFileSync(values.config, 'utf8'));
      } catch (err) {
        throw new Error(`--config: cannot read JSON from ${values.config}: ${(err as Error).message}`);
      }
      await setChannelConfig({ db, config }, values.app, values.channel, values.mode === 'live', raw);
      await recordAudit(db, { appId: values.app, livemode: values.mode === 'live', actor: { type: 'cli' }, action: 'channel_config.update', summary: { provider: values.channel, mode: values.mode } });
      process.stdout.write(`stored ${values.channel} ${values.mode} credentials for ${values.app} (encrypted)\n`);
      if (values.channel === 'paypal') {
        // PayPal posts to one listener URL per REST app; its webhook id is the config's webhook_id.
        process.stdout.write(`PayPal webhook URL to register for this REST app: ${config.publicUrl.replace(/\/$/, '')}/notify/paypal/${values.app}\n`
          + 'subscribe CHECKOUT.ORDER.APPROVED, PAYMENT.CAPTURE.COMPLETED, PAYMENT.CAPTURE.PENDING, PAYMENT.CAPTURE.DENIED, PAYMENT.CAPTURE.DECLINED, PAYMENT.CAPTURE.REFUNDED, PAYMENT.CAPTURE.REVERSED, CHECKOUT.PAYMENT-APPROVAL.REVERSED\n');
      }
      // Channels that send their events to an endpoint the merchant registers at them (Stripe's Dashboard).
      const events = channelFor(values.channel)?.webhookEvents;
      if (events) process.stdout.write(`register this webhook endpoint at ${channelFor(values.channel)!.displayName}, with the events ${events.join(', ')}:\n  ${config.publicUrl}/notify/${values.channel}/${values.app}\n`);
    } else if (cmd === 'channel' && sub === 'check') {
      const { values } = parseArgs({ args: argv.slice(2), options: { app: { type: 'string' }, channel: { type: 'string' }, mode: { type: 'string' } } });
      if (!values.app || !values.channel || !values.mode) throw new UsageError('--app, --channel and --mode are required');
      if (!isProvider(values.channel)) throw new UsageError('--channel must be alipay, wechatpay, unionpay, paypal or stripe');
      if (values.mode !== 'test' && values.mode !== 'live') throw new UsageError('--mode must be test or live');
      if (!(await db('apps').where({ id: values.app }).first())) throw new Error(`no such app: ${values.app}`);
      // Simulator keys point at this gateway's /sandbox: a test-mode check needs the gateway serving at PUBLIC_URL.
      const result = await checkChannelCredentials({ db, config, logger: createLogger('silent'), bus: createLocalBus() }, values.app, values.channel, values.mode === 'live');
      for (const s of result.steps) {
        process.stdout.write(`${s.status.padEnd(14)} ${s.title}: ${s.message}\n`);
        for (const c of s.certificates ?? []) process.stdout.write(`${''.padEnd(15)}${c.field} notAfter ${new Date(c.notAfter * 1000).toISOString()} (${c.state})\n`);
      }
      if (!result.ok) process.exitCode = 1;
    } else if (cmd === 'user' && sub === 'create') {
      const { values } = parseArgs({ args: argv.slice(2), options: { email: { type: 'string' }, app: { type: 'string' }, password: { type: 'string' }, role: { type: 'string' } } });
      if (!values.email || !values.app) throw new UsageError('--email and --app are required');
      const role = values.role ?? 'owner';
      if (!isRole(role)) throw new UsageError('--role must be owner, admin, developer or viewer');
      let password = values.password;
      if (password === undefined) {
        password = await readPassword('Password (at least 12 characters): ');
        checkPasswordStrength(password);
        if (process.stdin.isTTY && (await readPassword('Repeat it: ')) !== password) throw new Error('the passwords do not match');
      }
      const user = await createConsoleUser(db, { email: values.email, appId: values.app, password, role });
      await recordAudit(db, { appId: user.app_id, livemode: null, actor: { type: 'cli' }, action: 'team.member.create', object: { type: 'console_user', id: user.id }, summary: { email: user.email, role } });
      process.stdout.write(`created console user ${user.email} (${role}) for ${user.app_id}; sign in at ${config.publicUrl}/console/login\n`);
    } else if (cmd === 'key' && (sub === 'list' || sub === 'roll' || sub === 'revoke')) {
      await keyCommand(db, sub, argv.slice(2));
    } else {
      throw new UsageError(`unknown command: ${argv.join(' ')}`);
    }
  } finally {
    await db.destroy();
  }
}

/** `--expires-in`: seconds, or a number with s, m, h or d. */
export function parseDuration(text: string): number {
  const m = /^(\d{1,7})([smhd]?)$/.exec(text.trim());
  if (!m) throw new UsageError(`--expires-in ${JSON.stringify(text)} is not a duration (such as 3600, 90m, 24h or 7d)`);
  const seconds = Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  if (seconds > MAX_ROLL_OVERLAP_S) throw new UsageError('--expires-in may be at most 7d');
  return seconds;
}

async function keyCommand(db: ReturnType<typeof createDb>, sub: 'list' | 'roll' | 'revoke', args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { app: { type: 'string' }, mode: { type: 'string' }, key: { type: 'string' }, 'expires-in': { type: 'string' }, json: { type: 'boolean' } } });
  if (!values.app) throw new UsageError('--app is required');
  if (values.mode !== undefined && values.mode !== 'test' && values.mode !== 'live') throw new UsageError('--mode must be test or live');
  if (!(await db('apps').where({ id: values.app }).first())) throw new Error(`no such app: ${values.app}`);
  const modes = values.mode ? [values.mode === 'live'] : [false, true];
  if (sub === 'list') {
    for (const livemode of modes) {
      for (const k of (await listKeys(db, { appId: values.app, livemode })).data) {
        process.stdout.write(`${k.id}  ${k.livemode ? 'live' : 'test'}  ${k.hint}  ${k.status}${k.expires_at !== null ? `  until ${new Date(k.expires_at * 1000).toISOString()}` : ''}\n`);
      }
    }
    return;
  }
  if (!values.mode) throw new UsageError('--mode is required');
  const scope = { appId: values.app, livemode: values.mode === 'live' };
  if (sub === 'revoke') {
    if (!values.key) throw new UsageError('--key is required');
    const k = await revokeKey(db, scope, values.key);
    await recordAudit(db, { ...scope, actor: { type: 'cli' }, action: 'api_key.revoke', object: { type: 'api_key', id: k.id } });
    process.stdout.write(`revoked ${k.id} (${k.hint})\n`);
    return;
  }
  let keyId = values.key;
  if (!keyId) {
    // Without --key: the mode's one working key that has not been rolled yet.
    const candidates = (await listKeys(db, scope)).data.filter((k) => k.status === 'active');
    if (candidates.length !== 1) throw new UsageError(`--key is required: the app has ${candidates.length} active ${values.mode} keys (checkstand key list --app ${values.app})`);
    keyId = candidates[0].id;
  }
  const expiresIn = values['expires-in'] === undefined ? 0 : parseDuration(values['expires-in']);
  const { rolled, key } = await rollKey(db, scope, keyId, { expires_in: expiresIn });
  await recordAudit(db, { ...scope, actor: { type: 'cli' }, action: 'api_key.roll', object: { type: 'api_key', id: rolled.id }, summary: { successor: key.id, expires_in: expiresIn } });
  if (values.json) {
    process.stdout.write(JSON.stringify({ rolled: rolled.id, rolled_expires_at: rolled.expires_at, key: key.id, secret_key: key.secret }) + '\n');
    return;
  }
  process.stdout.write(`new ${values.mode} key ${key.id}: ${key.secret}\n`
    + `(shown only now) the old key ${rolled.hint} ${expiresIn === 0 ? 'stopped working now' : `works until ${new Date(rolled.expires_at! * 1000).toISOString()}`}\n`);
}

async function serve(runtime: Runtime): Promise<void> {
  const gateway = await startGateway();
  printBanner(gateway);
  if (runtime.fromSources) process.stdout.write(`\nRunning the TypeScript sources through tsx (${runtime.fromSources}): \`npm run build\` compiles them.\n`);
  // The demo shop (another origin, embedding the widget) runs beside the gateway on the embedded defaults.
  // Loaded only when it runs: no other command needs the shop or its webhook verifier.
  const { shop, reason } = gateway.deps.config.demo
    ? await (await import('../../examples/shop/server.ts')).startDemoShop({ gatewayUrl: gateway.url, dataDir: gateway.deps.config.dataDir })
    : { shop: undefined, reason: 'CHECKSTAND_DEMO is false' };
  process.stdout.write(shop ? `\nDemo shop (embeds the widget, verifies webhooks): ${shop.url}\n` : `\nDemo shop not started: ${reason}\n`);
  const shutdown = (signal: string) => {
    process.stdout.write(`${signal}: shutting down\n`);
    Promise.resolve(shop?.close())
      .then(() => gateway.stop())
      .then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}
