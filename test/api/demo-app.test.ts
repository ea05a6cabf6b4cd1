import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { printBanner } from '../../server/index.ts';

let g: TestGateway;

beforeAll(async () => {
  g = await startTestGateway({ workers: false, demo: true });
});
afterAll(async () => {
  await g?.close();
});

describe('the demo app of a first start', () => {
  it('is a test-mode app: no live key exists, in the database, data/demo-app.json or the banner', async () => {
    expect(g.demo).toBeDefined();
    const demo = g.demo!;
    const keys = await g.deps.db('api_keys').where({ app_id: demo.app_id });
    expect(keys.map((k) => Boolean(k.livemode))).toEqual([false]);

    const file = JSON.parse(fs.readFileSync(path.join(g.deps.config.dataDir, 'demo-app.json'), 'utf8'));
    expect(file).toEqual({ app_id: demo.app_id, name: 'Demo Shop', secret_key: demo.secret_key, allowed_origins: ['http://localhost:4000', 'http://127.0.0.1:4000'] });

    let banner = '';
    printBanner(g, (t) => (banner += t));
    expect(banner).toContain(demo.secret_key);
    expect(banner).not.toMatch(/sk_live_|live_secret_key|shown once/);
    expect(banner).toContain('checkstand app create');
  });

  it('takes payments with its test key', async () => {
    const demo = g.demo!;
    const created = await fetch(`${g.url}/v1/payments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${demo.secret_key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 100, subject: 'Demo tea', out_trade_no: 'demo_1' }),
    });
    expect(created.status).toBe(200);
    expect((await created.json()).livemode).toBe(false);
  });
});
