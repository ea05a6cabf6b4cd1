/**
 * The simulators as a whole gateway mounts them: no open redirect on the gateway's origin (the
 * full JSAPI OAuth round trip still works), and CHECKSTAND_SANDBOX=false unmounts them with a
 * clear error for every test-mode step that needs one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { getCredentials, setChannelConfig } from '../../server/apps/channel-configs.ts';
import { alipaySandbox } from '../../server/sandbox/alipay/index.ts';
import type { WechatpayCredentials } from '../../server/channels/wechatpay/index.ts';

const wechat = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2f) NetType/WIFI Language/zh_CN';
const desktop = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';
let seq = 0;

const create = (g: TestGateway) =>
  g.api('POST', '/v1/payments', { amount: 500, subject: 'Sandbox tea', out_trade_no: `sb_${Date.now()}_${++seq}` }).then((r) => r.body);
const formTokenOf = (html: string) => /name="form_token" value="([^"]+)"/.exec(html)?.[1] ?? '';
const choose = async (p: { checkout_url: string }, channel: string, ua: string) => {
  const html = await (await fetch(p.checkout_url, { headers: { 'user-agent': ua } })).text();
  return fetch(`${p.checkout_url}/channel`, {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': ua },
    body: new URLSearchParams({ form_token: formTokenOf(html), channel }),
  });
};

describe('simulators mounted (the default)', () => {
  let g: TestGateway;
  beforeAll(async () => {
    g = await startTestGateway({ workers: false });
  });
  afterAll(async () => {
    await g?.close();
  });

  it('the OAuth stand-in is no open redirect: a valid appid and a foreign redirect_uri get an error page', async () => {
    const cred = (await getCredentials(g.deps, g.app.app_id, 'wechatpay', false)) as WechatpayCredentials;
    for (const target of ['http://evil.example/x', `${g.url}/console/login`, `${g.url}.evil.example/pay/x/authorized`]) {
      const res = await fetch(`${g.url}/sandbox/wechatpay/connect/oauth2/authorize?appid=${cred.appid}&redirect_uri=${encodeURIComponent(target)}&response_type=code&scope=snsapi_base&state=s`, { redirect: 'manual' });
      expect(res.status, target).toBe(400);
      expect(res.headers.get('location'), target).toBeNull();
    }
  });

  it('the JSAPI round trip through the cashier still works: OAuth, /authorized, the in-app stand-in', async () => {
    const p = await create(g);
    const toOAuth = await choose(p, 'wechat_jsapi', wechat);
    expect(toOAuth.status).toBe(303);
    const authorize = await fetch(toOAuth.headers.get('location')!, { redirect: 'manual' });
    expect(authorize.status).toBe(302);
    const landing = authorize.headers.get('location')!;
    expect(landing.startsWith(`${p.checkout_url}/authorized?`)).toBe(true);
    const page = await fetch(landing, { headers: { 'user-agent': wechat } });
    expect(page.status).toBe(200);
    const sandboxLink = /href="([^"]*\/sandbox\/wechatpay\/jsapi\?[^"]*)"/.exec(await page.text())?.[1]?.replace(/&amp;/g, '&');
    expect(sandboxLink).toBeDefined();
    const payer = await fetch(sandboxLink!);
    expect(payer.status).toBe(200);
  });
});

describe('CHECKSTAND_SANDBOX=false', () => {
  let g: TestGateway;
  const logLines: string[] = [];
  beforeAll(async () => {
    g = await startTestGateway({ workers: false, sandbox: false, logLines });
  });
  afterAll(async () => {
    await g?.close();
  });

  it('mounts no simulator', async () => {
    for (const path of ['/sandbox/alipay/gateway.do', '/sandbox/wechatpay/connect/oauth2/authorize', '/sandbox/wechatpay/scan']) {
      expect((await fetch(g.url + path, { redirect: 'manual' })).status, path).toBe(404);
    }
  });

  it('a test payment on an app without test credentials of its own is a clear error at once, in the cashier and the API', async () => {
    const p = await create(g);
    const started = Date.now();
    const page = await choose(p, 'alipay_pc', desktop);
    expect(page.status).toBe(400);
    // The payer reads the cashier's own line; the operator's reason goes to the log.
    const text = await page.text();
    expect(text).toContain('该支付方式暂不可用');
    expect(text).not.toContain('CHECKSTAND_SANDBOX');
    expect(logLines.some((l) => l.includes('cashier could not start a payment') && l.includes('CHECKSTAND_SANDBOX=false'))).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await g.deps.db('channel_configs').where({ app_id: g.app.app_id })).toHaveLength(0);

    const sim = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc', outcome: 'pay', notify: 'normal' });
    expect(sim.status).toBe(400);
    expect(sim.body.error).toMatchObject({ type: 'invalid_request_error', code: 'sandbox_disabled' });
    expect(sim.body.error.message).toContain('CHECKSTAND_SANDBOX=false');
    expect(await g.deps.db('payment_attempts').where({ payment_id: p.id })).toHaveLength(0);
  });

  it('simulator keys provisioned while the simulators were on are refused with the same reason', async () => {
    const draft = await alipaySandbox.draftMerchant({ db: g.deps.db, publicUrl: g.url, masterKey: g.deps.config.masterKeyBytes, logger: g.deps.logger });
    const raw = await draft.register(g.deps.db);
    await setChannelConfig(g.deps, g.app.app_id, 'alipay', false, raw);
    await g.deps.db('channel_configs').where({ app_id: g.app.app_id, provider: 'alipay' }).update({ generated: true });
    await expect(getCredentials(g.deps, g.app.app_id, 'alipay', false)).rejects.toMatchObject({ name: 'ChannelConfigError', message: expect.stringContaining('CHECKSTAND_SANDBOX=false') });
    const p = await create(g);
    const page = await choose(p, 'alipay_pc', desktop);
    expect(page.status).toBe(400);
    // The payer reads the cashier's own line; the operator's reason goes to the log.
    const text = await page.text();
    expect(text).toContain('该支付方式暂不可用');
    expect(text).not.toContain('CHECKSTAND_SANDBOX');
    expect(logLines.some((l) => l.includes('cashier could not start a payment') && l.includes('CHECKSTAND_SANDBOX=false'))).toBe(true);
  });
});
