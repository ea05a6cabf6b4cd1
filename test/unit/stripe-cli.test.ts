import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';

const run = promisify(execFile);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-stripe-cli-'));
const env = { ...process.env, DATABASE_URL: `sqlite:${path.join(dir, 'cli.db')}`, CHECKSTAND_DATA_DIR: dir, LOG_LEVEL: 'silent', PUBLIC_URL: 'https://pay.shop.example' };
const cli = (args: string[]) => run(process.execPath, ['bin/checkstand.js', ...args], { env });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('channel set --channel stripe stores the keys and prints the webhook URL and events to register at Stripe', async () => {
  const { app_id } = JSON.parse((await cli(['app', 'create', '--name', 'Card shop', '--json'])).stdout);
  const file = path.join(dir, 'stripe.json');
  fs.writeFileSync(file, JSON.stringify({ secret_key: 'sk_live_abcdefghijklmnopqrstuvwx', webhook_secret: 'whsec_abcdefghijklmnopqrstuvwx' }));
  const { stdout } = await cli(['channel', 'set', '--app', app_id, '--channel', 'stripe', '--mode', 'live', '--config', file]);
  expect(stdout).toContain(`https://pay.shop.example/notify/stripe/${app_id}`);
  expect(stdout).toContain('checkout.session.completed');
  expect(stdout).not.toContain('sk_live_abcdefghijklmnopqrstuvwx');
  fs.writeFileSync(file, JSON.stringify({ secret_key: 'sk_live_abcdefghijklmnopqrstuvwx', webhook_secret: 'whsec_abcdefghijklmnopqrstuvwx', host: 'example.com', protocol: 'http' }));
  const refused = await cli(['channel', 'set', '--app', app_id, '--channel', 'stripe', '--mode', 'live', '--config', file]).catch((e) => e);
  expect(refused.code).toBe(1);
  expect(String(refused.stderr)).toContain('protocol http');
}, 60_000);
