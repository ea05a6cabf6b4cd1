import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';

// The console's forms and queries under the API's input rule (test/api/input.test.ts): text the
// database cannot store is a 400 page naming the field, never a 500, and changes nothing.

let g: TestGateway;
const PASSWORD = 'a long enough passphrase';
let cookie = '';
let csrf = '';

async function request(method: string, path: string, form?: Record<string, string>) {
  const headers: Record<string, string> = { cookie };
  if (form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    headers.origin = new URL(g.url).origin;
  }
  // The form is written by hand: URLSearchParams would not let a test send a raw %00 or %ED%A0%80.
  const body = form && Object.entries(form).map(([k, v]) => `${k}=${v}`).join('&');
  const res = await fetch(g.url + path, { method, headers, body, redirect: 'manual' });
  for (const c of res.headers.getSetCookie()) if (c.startsWith('__Host-checkstand_console=')) cookie = c.split(';')[0];
  return { status: res.status, text: await res.text() };
}

async function snapshot() {
  const out: Record<string, unknown[]> = {};
  for (const t of ['payments', 'refunds', 'webhook_endpoints', 'apps']) out[t] = await g.deps.db(t).select('*').orderBy('id');
  return out;
}

let paid = '';
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  await createConsoleUser(g.deps.db, { email: 'owner@test.example', appId: g.app.app_id, password: PASSWORD });
  // The login form's token is bound to a cookie the login page set.
  const login = await fetch(`${g.url}/console/login`, { redirect: 'manual' });
  const setCookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const token = (/name="_csrf" value="([^"]+)"/.exec(await login.text()) ?? [])[1];
  expect(token).toBeTruthy();
  const done = await fetch(`${g.url}/console/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: setCookie, 'content-type': 'application/x-www-form-urlencoded', origin: new URL(g.url).origin },
    body: new URLSearchParams({ _csrf: token, email: 'owner@test.example', password: PASSWORD }).toString(),
  });
  expect(done.status).toBe(303);
  cookie = done.headers.getSetCookie().find((c) => c.startsWith('__Host-checkstand_console='))!.split(';')[0];
  csrf = (/name="_csrf" value="([^"]+)"/.exec((await request('GET', '/console/payments')).text) ?? [])[1];
  expect(csrf).toBeTruthy();
  const p = (await g.api('POST', '/v1/payments', { amount: 1000, subject: 'Tea', out_trade_no: `ci_${Date.now()}` })).body;
  expect((await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc' })).body.status).toBe('succeeded');
  paid = p.id;
});
afterAll(async () => {
  await g?.close();
});

describe('console input', () => {
  it('refuses a NUL in a search or a filter with a 400 page naming it', async () => {
    for (const [path, field] of [['/console/payments?q=a%00b', 'q'], ['/console/payments?q=x&status=%00', 'status'], ['/console/reconciliation?from=2024-01-01%00', 'from']]) {
      const res = await request('GET', path);
      expect(res.status, path).toBe(400);
      expect(res.text, path).toContain(`Invalid ${field}: must not contain NUL characters`);
    }
  });

  it('refuses a NUL in a refund reason, refunding nothing', async () => {
    const before = await snapshot();
    const res = await request('POST', `/console/payments/${paid}/refunds`, { _csrf: csrf, amount: '1.00', reason: 'damaged%00' });
    expect(res.status).toBe(400);
    expect(res.text).toContain('Invalid reason: must not contain NUL characters');
    expect(await snapshot()).toEqual(before);
  });

  it('refuses a NUL in a webhook URL and in the origins, storing nothing', async () => {
    const before = await snapshot();
    const hook = await request('POST', '/console/webhooks', { _csrf: csrf, url: 'https://shop.example/h%00' });
    expect(hook.status).toBe(400);
    expect(hook.text).toContain('Invalid url: must not contain NUL characters');
    const origins = await request('POST', '/console/keys/origins', { _csrf: csrf, origins: 'https://shop.example%00' });
    expect(origins.status).toBe(400);
    expect(await snapshot()).toEqual(before);
  });

  it('answers a path it cannot decode with a 400 page, not a 500', async () => {
    for (const path of [`/console/payments/pay_%E0%A4%A`, '/console/webhooks/we_%ED%A0%80']) {
      const res = await request('GET', path);
      expect(res.status, path).toBe(400);
      expect(res.text, path).toContain('The URL is not valid percent-encoded UTF-8.');
    }
  });

  it('refuses channel credentials with an unknown key (a misspelt seller_id), storing nothing', async () => {
    const crypto = await import('node:crypto');
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const config = {
      app_id: '2021000000000042',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      alipay_public_key: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    };
    const post = (text: string) => request('POST', '/console/channels', { _csrf: csrf, provider: 'alipay', mode: 'live', config: encodeURIComponent(text) });
    const stored = () => g.deps.db('channel_configs').where({ app_id: g.app.app_id, provider: 'alipay', livemode: true });
    for (const text of [JSON.stringify({ ...config, seler_id: '2088000000000001' }), JSON.stringify(config).replace(/}$/, ',"__proto__":{"seller_id":"2088000000000001"}}')]) {
      const res = await post(text);
      expect(res.status).toBe(400);
      expect(res.text).toMatch(/Alipay config: unknown key &#34;(seler_id|__proto__)&#34;/);
      expect(await stored()).toHaveLength(0);
    }
    expect((await post(JSON.stringify({ ...config, seller_id: '2088000000000001' }))).status).toBe(303);
    expect(await stored()).toHaveLength(1);
  });

  it('still takes ordinary forms and searches', async () => {
    expect((await request('GET', '/console/payments?q=Tea%20%F0%9F%8D%B5')).status).toBe(200);
    const res = await request('POST', `/console/payments/${paid}/refunds`, { _csrf: csrf, amount: '1.00', reason: 'damaged' });
    expect(res.status).toBe(303);
  });
});
