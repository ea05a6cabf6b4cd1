/**
 * The direct API (DESIGN §2.1): create with channel and confirm place the channel order at once
 * and answer next_action with what the simulators really gave; declines and faults leave the
 * payment with last_attempt_error; bad input is refused before anything is stored or sent.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startReceiver } from '../support/receiver.ts';
import { routeChannelThrough } from '../support/slow-channel.ts';
import { createApp, type CreatedApp } from '../../server/apps/service.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import { findMerchant as findAlipayMerchant, findOrder as findAlipayOrder } from '../../server/sandbox/alipay/store.ts';
import { scanUrl as alipayScanUrl } from '../../server/sandbox/alipay/gateway.ts';
import { findOrder as findWechatOrder } from '../../server/sandbox/wechatpay/store.ts';
import { codeUrlOf } from '../../server/sandbox/wechatpay/wire.ts';
import { sandboxPayerOpenid } from '../../server/sandbox/wechatpay/index.ts';
import { signResponse } from '../../server/channels/alipay/sign.ts';
import { verifyJsapiPaySign } from '../../server/channels/wechatpay/sign.ts';
import type { AlipayCredentials } from '../../server/channels/alipay/index.ts';
import type { WechatpayCredentials } from '../../server/channels/wechatpay/index.ts';
import { qrSvg } from '../../server/checkout/qr.ts';

let g: TestGateway;
let seq = 0;
const tradeNo = () => `d_${Date.now()}_${++seq}`;
const base = { amount: 1234, subject: 'Direct order' };

beforeAll(async () => {
  g = await startTestGateway();
});
afterAll(async () => {
  await g?.close();
});

/** fetch with another app's key. */
const apiAs = (app: CreatedApp) => async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(g.url + path, {
    method,
    headers: { authorization: `Bearer ${app.secret_key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
};

const attemptsOf = (paymentId: string) => g.deps.db('payment_attempts').where({ payment_id: paymentId }).orderBy('created', 'asc').orderBy('id', 'asc');
const count = async (table: string, where: Record<string, unknown> = {}) => Number((await g.deps.db(table).where(where).count({ n: '*' }).first())!.n);
const wechatCred = async () => (await getCredentials(g.deps, g.app.app_id, 'wechatpay', false)) as WechatpayCredentials;
const alipayCred = async () => (await getCredentials(g.deps, g.app.app_id, 'alipay', false)) as AlipayCredentials;
const sandboxDeps = () => ({ db: g.deps.db, logger: g.deps.logger, masterKey: g.deps.config.masterKeyBytes, publicUrl: g.deps.config.publicUrl });

async function createWith(channel: string, extra: Record<string, unknown> = {}) {
  const res = await g.api('POST', '/v1/payments', { ...base, out_trade_no: tradeNo(), channel, ...extra });
  expect(res.status).toBe(200);
  return res.body;
}

async function simulatePay(id: string, channel: string) {
  const res = await g.api('POST', `/v1/test_helpers/payments/${id}/simulate`, { channel, outcome: 'pay', notify: 'normal' });
  expect(res.status).toBe(200);
  return res.body;
}

describe('create with channel answers next_action with what the channel gave', () => {
  it('alipay_pc and alipay_wap: redirect_to_url to the signed page-pay request, which opens the simulator\'s trade', async () => {
    for (const [channel, method] of [['alipay_pc', 'alipay.trade.page.pay'], ['alipay_wap', 'alipay.trade.wap.pay']] as const) {
      const p = await createWith(channel);
      expect(p).toMatchObject({ status: 'pending', channel, last_attempt_error: null, next_action: { type: 'redirect_to_url' } });
      expect(Object.keys(p.next_action)).toEqual(['type', 'redirect_to_url']);
      expect(Object.keys(p.next_action.redirect_to_url)).toEqual(['url']);
      const url = new URL(p.next_action.redirect_to_url.url);
      expect(`${url.origin}${url.pathname}`).toBe(`${g.deps.config.publicUrl}/sandbox/alipay/gateway.do`);
      expect(url.searchParams.get('method')).toBe(method);
      const [attempt] = await attemptsOf(p.id);
      expect(JSON.parse(url.searchParams.get('biz_content')!).out_trade_no).toBe(attempt.channel_order_no);
      // The payer's browser lands on the simulator's cashier: the trade exists there from then on.
      const page = await fetch(url, { redirect: 'manual' });
      expect(page.status).toBe(200);
      await page.arrayBuffer();
      const cred = await alipayCred();
      expect((await findAlipayOrder(g.deps.db, cred.appId, { outTradeNo: attempt.channel_order_no }))?.status).toBe('WAIT_BUYER_PAY');
      const paid = await simulatePay(p.id, channel);
      expect(paid).toMatchObject({ status: 'succeeded', next_action: null, last_attempt_error: null });
      expect(await attemptsOf(p.id)).toHaveLength(1);
    }
  });

  it('alipay_qr and wechat_native: display_qr_code with the simulator\'s code, an SVG of it, and the code\'s expiry', async () => {
    for (const channel of ['alipay_qr', 'wechat_native'] as const) {
      const p = await createWith(channel);
      expect(p.next_action.type).toBe('display_qr_code');
      expect(Object.keys(p.next_action.display_qr_code).sort()).toEqual(['data', 'expires_at', 'image_url']);
      const [attempt] = await attemptsOf(p.id);
      const expected = channel === 'alipay_qr'
        ? alipayScanUrl(sandboxDeps(), (await alipayCred()).appId, attempt.channel_order_no)
        : codeUrlOf((await findWechatOrder(g.deps.db, (await wechatCred()).mchid, attempt.channel_order_no))!.token);
      expect(p.next_action.display_qr_code.data).toBe(expected);
      expect(p.next_action.display_qr_code.expires_at).toBe(Math.min(p.expires_at, Number(attempt.created) + 7200));
      const token = p.checkout_url.split('/pay/')[1];
      expect(p.next_action.display_qr_code.image_url).toBe(`${g.deps.config.publicUrl}/pay/${token}/attempts/${attempt.id}/qr.svg`);
      const img = await fetch(p.next_action.display_qr_code.image_url);
      expect(img.status).toBe(200);
      expect(img.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
      expect(img.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
      expect(await img.text()).toBe(await qrSvg(expected));
      // The same list and retrieve carry it too (from the row, no read of attempts).
      expect((await g.api('GET', `/v1/payments/${p.id}`)).body.next_action).toEqual(p.next_action);
      expect((await g.api('GET', `/v1/payments?out_trade_no=${p.out_trade_no}`)).body.data[0].next_action).toEqual(p.next_action);
      const paid = await simulatePay(p.id, channel);
      expect(paid).toMatchObject({ status: 'succeeded', next_action: null });
      expect(await attemptsOf(p.id)).toHaveLength(1);
    }
  });

  it('the QR image answers only for an attempt of that checkout that has a QR code', async () => {
    const qr = await createWith('alipay_qr');
    const pc = await createWith('alipay_pc');
    const [qrAttempt] = await attemptsOf(qr.id);
    const [pcAttempt] = await attemptsOf(pc.id);
    const tokenOf = (p: any) => p.checkout_url.split('/pay/')[1];
    for (const path of [
      `/pay/${tokenOf(pc)}/attempts/${qrAttempt.id}/qr.svg`, // another payment's attempt
      `/pay/${tokenOf(pc)}/attempts/${pcAttempt.id}/qr.svg`, // no QR code
      `/pay/${'x'.repeat(32)}/attempts/${qrAttempt.id}/qr.svg`,
      `/pay/${tokenOf(qr)}/attempts/att_nope/qr.svg`,
    ]) {
      const res = await fetch(g.url + path);
      expect(res.status, path).toBe(404);
      expect(await res.text()).not.toContain('<svg');
    }
  });

  it('wechat_h5: redirect_to_url to the simulator\'s h5_url, for the client_ip given', async () => {
    const p = await createWith('wechat_h5', { client_ip: '203.0.113.9' });
    const [attempt] = await attemptsOf(p.id);
    const order = (await findWechatOrder(g.deps.db, (await wechatCred()).mchid, attempt.channel_order_no))!;
    expect(order.data.payerClientIp).toBe('203.0.113.9');
    const url = new URL(p.next_action.redirect_to_url.url);
    expect(url.pathname).toBe(`/sandbox/wechatpay/h5/${order.token}`);
    expect(url.searchParams.get('prepay_id')).toBe(order.data.prepayId);
    expect(url.searchParams.get('redirect_url')).toBe(`${g.deps.config.publicUrl}/pay/${p.checkout_url.split('/pay/')[1]}/return`);
    expect(await simulatePay(p.id, 'wechat_h5')).toMatchObject({ status: 'succeeded', next_action: null });
    expect(await attemptsOf(p.id)).toHaveLength(1);
  });

  it('wechat_jsapi: the six getBrandWCPayRequest fields, paySign verifying with the merchant key', async () => {
    const cred = await wechatCred();
    const openid = sandboxPayerOpenid(sandboxDeps(), cred.appid);
    const p = await createWith('wechat_jsapi', { openid });
    expect(p.next_action.type).toBe('wechat_jsapi');
    const params = p.next_action.wechat_jsapi;
    expect(Object.keys(params)).toEqual(['appId', 'timeStamp', 'nonceStr', 'package', 'signType', 'paySign']);
    const [attempt] = await attemptsOf(p.id);
    const order = (await findWechatOrder(g.deps.db, cred.mchid, attempt.channel_order_no))!;
    expect(order.data.openid).toBe(openid);
    expect(params).toMatchObject({ appId: cred.appid, package: `prepay_id=${order.data.prepayId}`, signType: 'RSA' });
    expect(verifyJsapiPaySign(params, crypto.createPublicKey(cred.privateKey))).toBe(true);
    expect(verifyJsapiPaySign({ ...params, package: 'prepay_id=wx0' }, crypto.createPublicKey(cred.privateKey))).toBe(false);
    expect(await simulatePay(p.id, 'wechat_jsapi')).toMatchObject({ status: 'succeeded', next_action: null });
    expect(await attemptsOf(p.id)).toHaveLength(1);
  });

  it('simulate places an order itself when none is placed (no channel at create), bringing the customer\'s IP and openid', async () => {
    for (const channel of ['wechat_h5', 'wechat_jsapi', 'alipay_qr'] as const) {
      const p = (await g.api('POST', '/v1/payments', { ...base, out_trade_no: tradeNo() })).body;
      expect(p).toMatchObject({ next_action: null, last_attempt_error: null });
      expect(await simulatePay(p.id, channel)).toMatchObject({ status: 'succeeded', channel, next_action: null });
    }
  });

  it('a closed payment has no next_action', async () => {
    const p = await createWith('wechat_native');
    const closed = await g.api('POST', `/v1/payments/${p.id}/close`, {});
    expect(closed.body).toMatchObject({ status: 'closed', next_action: null });
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.next_action).toBeNull();
  });
});

describe('the cashier opens a placed order\'s step', () => {
  const open = (p: any, ua = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/120') => fetch(p.checkout_url.replace(g.deps.config.publicUrl, g.url), { redirect: 'manual', headers: { 'user-agent': ua } });

  it('a redirect order goes straight to the channel; a QR order to its QR view showing the same code', async () => {
    const pc = await createWith('alipay_pc');
    const res = await open(pc);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(pc.next_action.redirect_to_url.url);

    const qr = await createWith('wechat_native');
    const first = await open(qr);
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe(`/pay/${qr.checkout_url.split('/pay/')[1]}/qr?channel=wechat_native`);
    const view = await fetch(g.url + first.headers.get('location'));
    expect(view.status).toBe(200);
    expect(await view.text()).toContain(await qrSvg(qr.next_action.display_qr_code.data));
    expect(await attemptsOf(qr.id)).toHaveLength(1); // the QR view showed the placed order, placed none
  });

  it('a JSAPI order opens the in-app page with its parameters, without a new OAuth or order', async () => {
    const cred = await wechatCred();
    const p = await createWith('wechat_jsapi', { openid: sandboxPayerOpenid(sandboxDeps(), cred.appid) });
    const res = await open(p, 'Mozilla/5.0 (iPhone) MicroMessenger/8.0');
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain(p.next_action.wechat_jsapi.paySign);
    expect(await attemptsOf(p.id)).toHaveLength(1);
  });

  it('an in-app order cannot be paid in a browser: the cashier offers its usual channels', async () => {
    // An order as the app adapters place it (alipay_app's order string), written where placing puts it.
    const p = (await g.api('POST', '/v1/payments', { ...base, out_trade_no: tradeNo() })).body;
    await g.api('POST', `/v1/payments/${p.id}/confirm`, { channel: 'alipay_qr' });
    const [attempt] = await attemptsOf(p.id);
    const orderString = 'app_id=2021000000000000&method=alipay.trade.app.pay&sign=x';
    await g.deps.db('payments').where({ id: p.id }).update({
      channel: 'alipay_app', next_action_attempt_id: attempt.id,
      next_action: JSON.stringify({ action: { type: 'alipay_app', orderString }, expires_at: p.expires_at }),
    });
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.next_action).toEqual({ type: 'alipay_app', alipay_app: { order_string: orderString } });
    const res = await open(p);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('data-channel="alipay_pc"');
    expect(html).toContain('data-channel="wechat_native"');
    expect(html).not.toContain('data-channel="alipay_app"');
  });

  it('after a declined or paid order, and for a payment without one, the usual pages', async () => {
    const plain = (await g.api('POST', '/v1/payments', { ...base, out_trade_no: tradeNo() })).body;
    const res = await open(plain);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('data-channel="alipay_pc"');
    const paid = await createWith('alipay_qr');
    await simulatePay(paid.id, 'alipay_qr');
    const after = await open(paid);
    expect(after.status).toBe(200);
    expect(await after.text()).not.toContain('data-channel=');
  });
});

/** A channel path for one app that passes through to the simulator, or declines precreate, or fails. */
async function startAlipayMiddle() {
  let mode: 'pass' | 'decline' | 'fault' = 'pass';
  let appId = '';
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const method = new URLSearchParams(req.url!.split('?')[1]).get('method') ?? new URLSearchParams(body.toString()).get('method');
      if (mode === 'fault') return void res.writeHead(502, { 'content-type': 'text/html' }).end('<html>Bad Gateway</html>');
      if (mode === 'decline' && method === 'alipay.trade.precreate') {
        // What Alipay answers a merchant over its single-payment limit, signed with the simulator's Alipay key.
        const merchant = (await findAlipayMerchant(g.deps.db, g.deps.config.masterKeyBytes, appId))!;
        const answer = signResponse('alipay_trade_precreate_response', { code: '40004', msg: 'Business Failed', sub_code: 'ACQ.TOTAL_FEE_EXCEED', sub_msg: '订单金额超过限额' }, merchant.alipayPrivateKey, merchant.certSns?.alipayCertSn);
        return void res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(answer);
      }
      const up = await fetch(`${g.url}${req.url}`, { method: req.method, headers: { 'content-type': String(req.headers['content-type'] ?? '') }, body: req.method === 'GET' ? undefined : body });
      res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'text/plain' }).end(Buffer.from(await up.arrayBuffer()));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    set: (m: typeof mode) => void (mode = m),
    forApp: (id: string) => void (appId = id),
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

describe('declines and faults do not fail the create', () => {
  let app: CreatedApp;
  let api: ReturnType<typeof apiAs>;
  let middle: Awaited<ReturnType<typeof startAlipayMiddle>>;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    app = await createApp(g.deps.db, { name: 'Declined Shop' });
    api = apiAs(app);
    middle = await startAlipayMiddle();
    const cred = (await getCredentials(g.deps, app.app_id, 'alipay', false)) as AlipayCredentials;
    middle.forApp(cred.appId);
    await routeChannelThrough(g.deps, app.app_id, 'alipay', middle.url);
    receiver = await startReceiver();
    const ep = await api('POST', '/v1/webhook_endpoints', { url: receiver.url });
    receiver.setSecret(ep.body.secret);
  });
  afterAll(async () => {
    await middle?.close();
    await receiver?.close();
  });

  it('a decline: 200 with next_action null, last_attempt_error, payment.attempt_failed (event and webhook)', async () => {
    middle.set('decline');
    const res = await api('POST', '/v1/payments', { ...base, out_trade_no: tradeNo(), channel: 'alipay_qr' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'pending', channel: 'alipay_qr', next_action: null,
      last_attempt_error: { channel: 'alipay_qr', code: 'ACQ.TOTAL_FEE_EXCEED', message: '订单金额超过限额' },
    });
    const [attempt] = await attemptsOf(res.body.id);
    expect(attempt.status).toBe('failed');
    const events = (await api('GET', '/v1/events')).body.data.filter((e: any) => e.data.object.id === res.body.id);
    expect(events.map((e: any) => e.type)).toEqual(['payment.attempt_failed']);
    expect(events[0].data.object).toEqual(res.body);
    const hook = await receiver.waitFor((w) => w.payload?.data?.object?.id === res.body.id);
    expect(hook.verified).toBe(true);
    expect(hook.payload.type).toBe('payment.attempt_failed');
    expect(hook.payload.data.object).toMatchObject({ next_action: null, last_attempt_error: res.body.last_attempt_error });

    // Confirm places a new order; its success clears the error.
    middle.set('pass');
    const confirmed = await api('POST', `/v1/payments/${res.body.id}/confirm`, { channel: 'alipay_qr' });
    expect(confirmed.status).toBe(200);
    expect(confirmed.body).toMatchObject({ last_attempt_error: null, next_action: { type: 'display_qr_code' } });
    expect(await attemptsOf(res.body.id)).toHaveLength(2);
  });

  it('a fault (the channel answers 502): 200 with last_attempt_error channel_unavailable, no event; confirm then works', async () => {
    middle.set('fault');
    const res = await api('POST', '/v1/payments', { ...base, out_trade_no: tradeNo(), channel: 'alipay_qr' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'pending', next_action: null, last_attempt_error: { channel: 'alipay_qr', code: 'channel_unavailable' } });
    // The order may exist at the channel: the attempt stays pending for the worker to ask about.
    expect((await attemptsOf(res.body.id)).map((a) => a.status)).toEqual(['pending']);
    expect(await count('events', { object_id: res.body.id })).toBe(0);
    middle.set('pass');
    const confirmed = await api('POST', `/v1/payments/${res.body.id}/confirm`, { channel: 'alipay_qr' });
    expect(confirmed.body).toMatchObject({ last_attempt_error: null, next_action: { type: 'display_qr_code' } });
    const sim = await api('POST', `/v1/test_helpers/payments/${res.body.id}/simulate`, { channel: 'alipay_qr', outcome: 'pay', notify: 'normal' });
    expect(sim.body).toMatchObject({ status: 'succeeded', next_action: null, last_attempt_error: null });
  });

  it('a failed payment at the simulator: the placed order fails, next_action goes, the error says so', async () => {
    middle.set('pass');
    const p = (await api('POST', '/v1/payments', { ...base, out_trade_no: tradeNo(), channel: 'alipay_qr' })).body;
    expect(p.next_action.type).toBe('display_qr_code');
    const sim = await api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_qr', outcome: 'fail', notify: 'normal' });
    expect(sim.body).toMatchObject({ status: 'pending', next_action: null, last_attempt_error: { channel: 'alipay_qr' } });
    expect(await attemptsOf(p.id)).toHaveLength(1);
  });
});

describe('confirm', () => {
  it('switches channel: a new attempt and next_action on the new channel; simulate pays it and the old order is closed', async () => {
    const p = await createWith('alipay_qr');
    const res = await g.api('POST', `/v1/payments/${p.id}/confirm`, { channel: 'wechat_native' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: p.id, channel: 'wechat_native', next_action: { type: 'display_qr_code' } });
    expect(res.body.next_action.display_qr_code.data).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=/);
    const attempts = await attemptsOf(p.id);
    expect(attempts.map((a) => a.channel)).toEqual(['alipay_qr', 'wechat_native']);
    expect(res.body.next_action.display_qr_code.image_url).toContain(`/attempts/${attempts[1].id}/qr.svg`);
    const paid = await simulatePay(p.id, 'wechat_native');
    expect(paid).toMatchObject({ status: 'succeeded', channel: 'wechat_native', next_action: null });
    expect((await attemptsOf(p.id)).map((a) => a.status)).toEqual(['closing', 'succeeded']);
  });

  it('to wechat_h5 takes the client_ip given, and the payment\'s own otherwise', async () => {
    const p = await createWith('alipay_pc', { client_ip: '198.51.100.7' });
    const res = await g.api('POST', `/v1/payments/${p.id}/confirm`, { channel: 'wechat_h5' });
    expect(res.body.next_action.type).toBe('redirect_to_url');
    const res2 = await g.api('POST', `/v1/payments/${p.id}/confirm`, { channel: 'wechat_h5', client_ip: '2001:db8::5' });
    const attempts = await attemptsOf(p.id);
    const mchid = (await wechatCred()).mchid;
    expect((await findWechatOrder(g.deps.db, mchid, attempts[1].channel_order_no))!.data.payerClientIp).toBe('198.51.100.7');
    expect((await findWechatOrder(g.deps.db, mchid, attempts[2].channel_order_no))!.data.payerClientIp).toBe('2001:db8::5');
    expect(res2.body.next_action.redirect_to_url.url).not.toBe(res.body.next_action.redirect_to_url.url);
  });

  it('the same Idempotency-Key sent twice at once places one order', async () => {
    const p = (await g.api('POST', '/v1/payments', { ...base, out_trade_no: tradeNo() })).body;
    const ordersBefore = await count('sandbox_orders');
    const key = `confirm-${tradeNo()}`;
    const [a, b] = await Promise.all([0, 1].map(() => g.api('POST', `/v1/payments/${p.id}/confirm`, { channel: 'wechat_native' }, { 'Idempotency-Key': key })));
    const statuses = [a.status, b.status].sort();
    expect(statuses[0]).toBe(200);
    expect([200, 409]).toContain(statuses[1]);
    expect(await attemptsOf(p.id)).toHaveLength(1);
    expect(await count('sandbox_orders')).toBe(ordersBefore + 1);
    // After both answered, a retry replays the first answer.
    const replay = await g.api('POST', `/v1/payments/${p.id}/confirm`, { channel: 'wechat_native' }, { 'Idempotency-Key': key });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.next_action).toEqual((a.status === 200 ? a : b).body.next_action);
    expect(await attemptsOf(p.id)).toHaveLength(1);
  });
});

describe('bad input changes nothing', () => {
  /**
   * Runs `send` expecting a 4xx naming `param`, and checks no payment, attempt, simulator order or
   * event came of it, and that the payment (when given) is as it was.
   */
  async function refused(param: string, send: () => Promise<{ status: number; body: any }>, paymentId?: string) {
    const snapshot = async () => ({
      payments: await count('payments'), attempts: await count('payment_attempts'), orders: await count('sandbox_orders'),
      events: await count('events', paymentId ? { object_id: paymentId } : {}),
      payment: paymentId ? (await g.api('GET', `/v1/payments/${paymentId}`)).body : undefined,
    });
    const before = await snapshot();
    const res = await send();
    expect(res.status, JSON.stringify(res.body)).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.body.error.param).toBe(param);
    expect(await snapshot()).toEqual(before);
    return res.body.error;
  }
  const create = (extra: Record<string, unknown>) => () => g.api('POST', '/v1/payments', { ...base, out_trade_no: tradeNo(), ...extra });

  it('create: missing or malformed channel inputs, a channel not offered in the currency', async () => {
    // Provision both simulators first, so a refusal's "no orders" is not just "no keys yet".
    await wechatCred();
    await alipayCred();
    expect((await refused('client_ip', create({ channel: 'wechat_h5' }))).code).toBe('parameter_missing');
    expect((await refused('openid', create({ channel: 'wechat_jsapi' }))).code).toBe('parameter_missing');
    await refused('openid', create({ channel: 'wechat_jsapi', openid: 'o has spaces' }));
    await refused('openid', create({ channel: 'wechat_jsapi', openid: 'o'.repeat(129) }));
    await refused('openid', create({ channel: 'wechat_jsapi', openid: '' }));
    await refused('openid', create({ openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' }));
    await refused('openid', create({ channel: 'alipay_qr', openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' }));
    await refused('client_ip', create({ channel: 'wechat_h5', client_ip: '999.1.1.1' }));
    expect((await refused('currency', create({ channel: 'alipay_qr', currency: 'USD' }))).code).toBe('currency_not_supported');
    expect((await refused('currency', create({ channel: 'paypal' }))).code).toBe('currency_not_supported');
    await refused('channel', create({ channel: 'bitcoin' }));
  });

  it('confirm: a paid, closed or expired payment; unknown, unavailable or wrong-currency channels; bad openid and client_ip', async () => {
    const paid = await createWith('alipay_qr');
    await simulatePay(paid.id, 'alipay_qr');
    expect((await refused('id', () => g.api('POST', `/v1/payments/${paid.id}/confirm`, { channel: 'wechat_native' }), paid.id)).code).toBe('payment_unexpected_state');
    const closed = await createWith('alipay_qr');
    await g.api('POST', `/v1/payments/${closed.id}/close`, {});
    await refused('id', () => g.api('POST', `/v1/payments/${closed.id}/confirm`, { channel: 'alipay_qr' }), closed.id);
    const expired = (await g.api('POST', '/v1/payments', { ...base, out_trade_no: tradeNo() })).body;
    // Expired, and held back from the worker's expiry pass (as one whose close is being retried), so it stays pending.
    await g.deps.db('payments').where({ id: expired.id }).update({ expires_at: Math.floor(Date.now() / 1000) - 1, close_retry_at_ms: Date.now() + 3_600_000 });
    expect((await refused('id', () => g.api('POST', `/v1/payments/${expired.id}/confirm`, { channel: 'alipay_qr' }), expired.id)).code).toBe('payment_expired');
    await refused('id', () => g.api('POST', '/v1/payments/pay_doesnotexist/confirm', { channel: 'alipay_qr' }));

    const p = await createWith('alipay_qr');
    const confirm = (body: unknown) => () => g.api('POST', `/v1/payments/${p.id}/confirm`, body);
    await refused('channel', confirm({}), p.id);
    await refused('channel', confirm({ channel: 'bitcoin' }), p.id);
    await refused('channel', confirm({ channel: 'paypal' }), p.id);
    await refused('client_ip', confirm({ channel: 'wechat_h5' }), p.id);
    await refused('client_ip', confirm({ channel: 'wechat_h5', client_ip: 'localhost' }), p.id);
    await refused('openid', confirm({ channel: 'wechat_jsapi' }), p.id);
    await refused('openid', confirm({ channel: 'wechat_jsapi', openid: 'o/../../x' }), p.id);
    await refused('openid', confirm({ channel: 'wechat_native', openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' }), p.id);
    await refused('amount', confirm({ channel: 'alipay_qr', amount: 1 }), p.id);
    const usd = (await g.api('POST', '/v1/payments', { ...base, out_trade_no: tradeNo(), currency: 'USD' })).body;
    expect((await refused('channel', () => g.api('POST', `/v1/payments/${usd.id}/confirm`, { channel: 'wechat_native' }), usd.id)).code).toBe('currency_not_supported');
  });
});
