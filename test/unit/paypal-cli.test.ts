import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checkstand-paypal-cli-'));
const env = { ...process.env, DATABASE_URL: `sqlite:${path.join(dir, 'cli.db')}`, CHECKSTAND_DATA_DIR: dir, LOG_LEVEL: 'silent', PUBLIC_URL: 'https://pay.shop.example' };
const cli = (args: string[]) => run(process.execPath, ['bin/checkstand.js', ...args], { env });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('checkstand channel set --channel paypal', () => {
  it('stores the config and prints the webhook URL to register at PayPal; a bad config names the field', async () => {
    const { app_id } = JSON.parse((await cli(['app', 'create', '--name', 'PP', '--json'])).stdout);
    const file = path.join(dir, 'paypal.json');
    fs.writeFileSync(file, JSON.stringify({ client_id: 'AbcdEfgh12345', client_secret: 'EsecretSecret12345', webhook_id: '8PT597110X687430L' }));
    const { stdout } = await cli(['channel', 'set', '--app', app_id, '--channel', 'paypal', '--mode', 'live', '--config', file]);
    expect(stdout).toContain(`https://pay.shop.example/notify/paypal/${app_id}`);
    expect(stdout).toContain('CHECKOUT.ORDER.APPROVED');
    expect(stdout).not.toContain('EsecretSecret12345');
    fs.writeFileSync(file, JSON.stringify({ client_id: 'AbcdEfgh12345', client_secret: 'EsecretSecret12345' }));
    const err = await cli(['channel', 'set', '--app', app_id, '--channel', 'paypal', '--mode', 'live', '--config', file]).catch((e) => e);
    expect(err.code).toBe(1);
    expect(String(err.stderr)).toContain('webhook_id');
  });
});
