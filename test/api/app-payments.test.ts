/**
 * In-app payments (alipay_app, wechat_app) through the whole gateway, against the simulators'
 * wallet endpoints over real HTTP, as the channels' app SDKs would post to them: genuine requests
 * in both Alipay encodings pay; tampered order strings, wrong signs and expired, reused or
 * foreign prepay_ids are refused naming the field and change nothing; the client's result is
 * never what settles the payment; the cashier never offers an in-app code.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { findPayment } from '../../server/payments/repo.ts';
import { startAttempt } from '../../server/payments/service.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import type { ChannelCode, PaymentAction } from '../../server/channels/types.ts';
import type { AlipayCredentials } from '../../server/channels/alipay/index.ts';
import type { WechatpayCredentials } from '../../server/channels/wechatpay/index.ts';
import { readSignedResponse, requestSignContent, signRequest, verifyResponse, verifyRsa2 } from '../../server/channels/alipay/sign.ts';
import { appPaySignMessage, signSha256Rsa, verifySha256Rsa } from '../../server/channels/wechatpay/sign.ts';
import { findOrder as findAlipayOrder } from '../../server/sandbox/alipay/store.ts';
import { findMerchant as findWechatMerchant, findOrder as findWechatOrder } from '../../server/sandbox/wechatpay/store.ts';
import { buildNotify, notifyRequest } from '../../server/sandbox/wechatpay/notify.ts';
import { transactionOf } from '../../server/sandbox/wechatpay/wire.ts';
import { formTokenFor } from '../../server/checkout/service.ts';
import { createApp } from '../../server/apps/service.ts';

let g: TestGateway;
let seq = 0;
beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(async () => {
  await g?.close();
});

const auth = () => ({ appId: g.app.app_id, livemode: false });

/** A payment with an in-app attempt placed, as the direct API would place it; the adapter's action. */
async function placed(channel: ChannelCode, amount = 1500) {
  const p = (await g.api('POST', '/v1/payments', { amount, subject: 'App order 应用内 & more', out_trade_no: `app_${Date.now()}_${++seq}` })).body;
  const row = (await findPayment(g.deps.db, auth(), p.id))!;
  const { attempt, result } = await startAttempt(g.deps, row, channel);
  if (!result.ok) throw new Error(`declined: ${result.decline.code}`);
  return { id: p.id as string, orderNo: attempt.channel_order_no, action: result.action };
}
const status = async (id: string) => (await g.api('GET', `/v1/payments/${id}`)).body.status;

// --- Alipay --------------------------------------------------------------------------------------

const alipayCred = async () => (await getCredentials(g.deps, g.app.app_id, 'alipay', false)) as AlipayCredentials;

function orderStringOf(action: PaymentAction): string {
  if (action.type !== 'alipay_app') throw new Error(`expected alipay_app, got ${action.type}`);
  return action.orderString;
}

/** The Node SDK's form decoded: encodeURIComponent per value, so a plain decode. */
const nodeParams = (s: string) => Object.fromEntries(s.split('&').map((kv) => kv.split('=').map(decodeURIComponent) as [string, string]));
/** The Java SDK's form of the same parameters: sorted (sign included), URL-encoded with `+` for spaces. */
const javaEncoded = (p: Record<string, string>) => Object.keys(p).sort().map((k) => `${k}=${new URLSearchParams({ v: p[k]! }).toString().slice(2)}`).join('&');

const wallet = (provider: 'alipay' | 'wechatpay', body: string, q: Record<string, string> = {}, contentType = 'application/x-www-form-urlencoded') =>
  fetch(`${g.url}/sandbox/${provider}/app/pay?${new URLSearchParams(q)}`, { method: 'POST', headers: { 'content-type': contentType }, body })
    .then(async (res) => ({ status: res.status, body: (await res.json()) as any }));

describe('alipay_app: the order string', () => {
  it('is the SDK\'s alipay.trade.app.pay string, signed over the sorted params (sign_type in), verifying with the app public key', async () => {
    const { action, orderNo, id } = await placed('alipay_app');
    const s = orderStringOf(action);
    // Node SDK test (sdkExecute): the string starts with these common params, in insertion order.
    expect(s).toMatch(/^method=alipay\.trade\.app\.pay&app_id=\d{16}&charset=utf-8&version=1\.0&sign_type=RSA2&timestamp=/);
    const p = nodeParams(s);
    expect(Object.keys(p).at(-1)).toBe('sign');
    const cred = await alipayCred();
    expect(p.app_id).toBe(cred.appId);
    expect(p.notify_url).toBe(`${g.deps.config.publicUrl}/notify/alipay/${g.app.app_id}`);
    const biz = JSON.parse(p.biz_content!);
    const payment = (await findPayment(g.deps.db, auth(), id))!;
    expect(biz).toMatchObject({ out_trade_no: orderNo, total_amount: '15.00', product_code: 'QUICK_MSECURITY_PAY', subject: 'App order 应用内 more' });
    expect(biz.time_expire).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    // time_expire is the payment's expiry in Beijing time.
    const [d, t] = biz.time_expire.split(' ');
    expect(Date.parse(`${d}T${t}+08:00`) / 1000).toBe(payment.expires_at);
    // The signed content: every param but sign, sign_type included, sorted, values unencoded.
    const content = Object.keys(p).filter((k) => k !== 'sign').sort().map((k) => `${k}=${p[k]}`).join('&');
    expect(content).toContain('sign_type=RSA2');
    expect(requestSignContent(p)).toBe(content);
    const appPublicKey = crypto.createPublicKey(cred.privateKey);
    expect(crypto.createVerify('RSA-SHA256').update(content, 'utf8').verify(appPublicKey, p.sign!, 'base64')).toBe(true);
    // Not with another key, and not over another content.
    expect(verifyRsa2(content, p.sign!, crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey)).toBe(false);
    expect(verifyRsa2(content.replace('15.00', '16.00'), p.sign!, appPublicKey)).toBe(false);
    // No gateway call was made: the trade exists at "Alipay" only once the app posts the string.
    expect(await findAlipayOrder(g.deps.db, cred.appId, { outTradeNo: orderNo })).toBeUndefined();
  });
});

describe('alipay_app: the simulator\'s wallet', () => {
  it('pays a genuine Node-encoded string: 9000 with a result signed by Alipay, and the notify settles the payment', async () => {
    const { action, id, orderNo } = await placed('alipay_app');
    const res = await wallet('alipay', orderStringOf(action), { outcome: 'pay' });
    expect(res.status).toBe(200);
    expect(res.body.resultStatus).toBe('9000');
    const signed = readSignedResponse(res.body.result, ['alipay_trade_app_pay_response']);
    expect(verifyResponse(signed, (await alipayCred()).alipayPublicKey)).toBe(true);
    expect(JSON.parse(res.body.result).sign_type).toBe('RSA2');
    expect(JSON.parse(signed.body)).toMatchObject({ code: '10000', out_trade_no: orderNo, total_amount: '15.00', app_id: (await alipayCred()).appId });
    // notify 'normal' has been answered before the wallet answers.
    expect(await status(id)).toBe('succeeded');
    // Replaying the same order string cannot pay again.
    const again = await wallet('alipay', orderStringOf(action), { outcome: 'pay' });
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({ resultStatus: '4000', sub_code: 'ACQ.TRADE_HAS_SUCCESS' });
  });

  it('takes the Java SDK\'s encoding (sorted, + for spaces) too; cancel answers 6001 and leaves the trade waiting', async () => {
    const { action, id, orderNo } = await placed('alipay_app');
    const java = javaEncoded(nodeParams(orderStringOf(action)));
    expect(java).toContain('+'); // the subject and timestamp hold spaces
    expect(java).not.toBe(orderStringOf(action));
    const cancelled = await wallet('alipay', java, { outcome: 'cancel' });
    expect(cancelled.body).toEqual({ resultStatus: '6001', result: '', memo: '用户中途取消' });
    const trade = await findAlipayOrder(g.deps.db, (await alipayCred()).appId, { outTradeNo: orderNo });
    expect(trade?.status).toBe('WAIT_BUYER_PAY');
    expect(await status(id)).toBe('pending');
    const paid = await wallet('alipay', java, { outcome: 'pay', notify: 'drop' });
    expect(paid.body.resultStatus).toBe('9000');
    // The client's 9000 is not what settles it: with the notify dropped, the payment waits for a query.
    expect(await status(id)).toBe('pending');
    expect((await findAlipayOrder(g.deps.db, (await alipayCred()).appId, { outTradeNo: orderNo }))?.status).toBe('TRADE_SUCCESS');
  });

  it('fail answers 4000 and closes the trade', async () => {
    const { action, orderNo } = await placed('alipay_app');
    const failed = await wallet('alipay', orderStringOf(action), { outcome: 'fail' });
    expect(failed.body.resultStatus).toBe('4000');
    expect((await findAlipayOrder(g.deps.db, (await alipayCred()).appId, { outTradeNo: orderNo }))?.status).toBe('TRADE_CLOSED');
  });

  it('refuses a string with one byte changed, in either encoding, naming the signature; nothing is created', async () => {
    const { action, id, orderNo } = await placed('alipay_app');
    const node = orderStringOf(action);
    const p = nodeParams(node);
    const tamperedBiz = p.biz_content!.replace('"total_amount":"15.00"', '"total_amount":"15.01"');
    expect(tamperedBiz).not.toBe(p.biz_content);
    const cases = {
      'node, amount': node.replace(encodeURIComponent('"total_amount":"15.00"'), encodeURIComponent('"total_amount":"15.01"')),
      'java, amount': javaEncoded({ ...p, biz_content: tamperedBiz }),
      'node, notify_url': node.replace('notify_url=http', 'notify_url=https'),
      'java, timestamp': javaEncoded({ ...p, timestamp: p.timestamp!.replace(/\d$/, (d) => String((Number(d) + 1) % 10)) }),
    };
    for (const [name, body] of Object.entries(cases)) {
      expect(body, name).not.toBe(node);
      const res = await wallet('alipay', body, { outcome: 'pay' });
      expect(res.status, name).toBe(400);
      expect(res.body, name).toMatchObject({ resultStatus: '4000', sub_code: 'isv.invalid-signature' });
      expect(res.body.memo, name).toContain('验签出错');
    }
    expect(await findAlipayOrder(g.deps.db, (await alipayCred()).appId, { outTradeNo: orderNo })).toBeUndefined();
    expect(await status(id)).toBe('pending');
  });

  it('refuses malformed bodies and choices, naming what is wrong', async () => {
    const { action } = await placed('alipay_app');
    const s = orderStringOf(action);
    const cases: Array<[string, string, Record<string, string>, string]> = [
      ['empty', '', {}, 'order_string'],
      ['a parameter twice', `${s}&app_id=2021000000000000`, {}, 'app_id is given twice'],
      ['bad percent-encoding', s.replace('charset=utf-8', 'charset=%E0%A4%A'), {}, 'bad URL encoding'],
      ['no sign', s.replace(/&sign=[^&]*$/, ''), {}, 'sign'],
      ['an unknown outcome', s, { outcome: 'maybe' }, 'outcome'],
      ['an unknown notify mode', s, { notify: 'sometimes' }, 'notify'],
    ];
    for (const [name, body, q, names] of cases) {
      const res = await wallet('alipay', body, q);
      expect(res.status, name).toBe(400);
      expect(res.body.resultStatus, name).toBe('4000');
      expect(res.body.memo, name).toContain(names);
    }
    // Genuinely signed, but biz_content breaks Alipay's rules for app pay: refused naming the field.
    const p = nodeParams(s);
    const cred = await alipayCred();
    const signedWith = (biz: Record<string, unknown>) => {
      const q: Record<string, string> = { ...p, biz_content: JSON.stringify({ ...JSON.parse(p.biz_content!), ...biz }) };
      delete q.sign;
      return javaEncoded({ ...q, sign: signRequest(q, cred.privateKey) });
    };
    for (const [biz, names] of [
      [{ product_code: 'FAST_INSTANT_TRADE_PAY' }, 'product_code'],
      [{ time_expire: '2020-01-01 00:00:00' }, 'time_expire'],
      [{ total_amount: '0.001' }, 'total_amount'],
      [{ out_trade_no: 'bad no!' }, 'out_trade_no'],
    ] as const) {
      const res = await wallet('alipay', signedWith(biz));
      expect(res.status, names).toBe(400);
      expect(res.body, names).toMatchObject({ resultStatus: '4000', sub_code: 'ACQ.INVALID_PARAMETER' });
      expect(res.body.memo, names).toContain(names);
    }
    expect(await findAlipayOrder(g.deps.db, cred.appId, { outTradeNo: JSON.parse(p.biz_content!).out_trade_no })).toBeUndefined();
    // Another method than app pay is not the wallet's.
    const other = await wallet('alipay', javaEncoded({ ...p, method: 'alipay.trade.page.pay' }));
    expect(other.body).toMatchObject({ resultStatus: '4000', sub_code: 'isv.invalid-method' });
  });
});

// --- WeChat Pay ----------------------------------------------------------------------------------

const wechatCred = async (appId = g.app.app_id) => (await getCredentials(g.deps, appId, 'wechatpay', false)) as WechatpayCredentials;

function payReqOf(action: PaymentAction): Record<string, string> {
  if (action.type !== 'wechat_app') throw new Error(`expected wechat_app, got ${action.type}`);
  return action.params;
}
const resign = (p: Record<string, string>, key: crypto.KeyObject) => ({ ...p, sign: signSha256Rsa(appPaySignMessage(p.appid!, p.timestamp!, p.noncestr!, p.prepayid!), key) });
const payWechat = (p: Record<string, string>, q: Record<string, string> = {}) => wallet('wechatpay', JSON.stringify(p), q, 'application/json');

describe('wechat_app: the PayReq', () => {
  it('carries the seven fields for the mobile app\'s AppID, signed over the four lines with the merchant key', async () => {
    const { action, orderNo } = await placed('wechat_app');
    const p = payReqOf(action);
    const cred = await wechatCred();
    expect(Object.keys(p).sort()).toEqual(['appid', 'noncestr', 'package', 'partnerid', 'prepayid', 'sign', 'timestamp']);
    expect(cred.appAppid).toMatch(/^wx[0-9a-f]{16}$/);
    expect(cred.appAppid).not.toBe(cred.appid);
    expect(p).toMatchObject({ appid: cred.appAppid, partnerid: cred.mchid, package: 'Sign=WXPay' });
    expect(p.timestamp).toMatch(/^\d{10}$/);
    expect(Math.abs(Number(p.timestamp) - Date.now() / 1000)).toBeLessThan(600);
    expect(p.noncestr!.length).toBeLessThanOrEqual(32);
    const message = `${p.appid}\n${p.timestamp}\n${p.noncestr}\n${p.prepayid}\n`;
    expect(appPaySignMessage(p.appid!, p.timestamp!, p.noncestr!, p.prepayid!)).toBe(message);
    const merchantPublicKey = crypto.createPublicKey(cred.privateKey);
    expect(crypto.createVerify('RSA-SHA256').update(message).verify(merchantPublicKey, p.sign!, 'base64')).toBe(true);
    expect(verifySha256Rsa(message.replace(p.noncestr!, `${p.noncestr}x`), p.sign!, merchantPublicKey)).toBe(false);
    // The order was placed at /v3/pay/transactions/app under the mobile AppID.
    const order = await findWechatOrder(g.deps.db, cred.mchid, orderNo);
    expect(order).toMatchObject({ state: 'NOTPAY', data: { tradeType: 'APP', appid: cred.appAppid, prepayId: p.prepayid } });
  });
});

describe('wechat_app: the simulator\'s wallet', () => {
  it('pays a genuine PayReq (errCode 0, then the notify settles it), and refuses the prepay_id a second time', async () => {
    const { action, id } = await placed('wechat_app');
    const p = payReqOf(action);
    const res = await payWechat(p);
    expect(res).toEqual({ status: 200, body: { errCode: 0 } });
    expect(await status(id)).toBe('succeeded');
    const again = await payWechat(p);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ errCode: -1, code: 'ORDERPAID', field: 'prepayid' });
  });

  it('errCode 0 is not what settles it: with the notify dropped the payment waits for a query', async () => {
    const { action, id } = await placed('wechat_app');
    expect((await payWechat(payReqOf(action), { notify: 'drop' })).body).toEqual({ errCode: 0 });
    expect(await status(id)).toBe('pending');
  });

  it('cancel answers -2 and changes nothing; fail answers -1 and the order fails', async () => {
    const cred = await wechatCred();
    const a = await placed('wechat_app');
    expect((await payWechat(payReqOf(a.action), { outcome: 'cancel' })).body).toMatchObject({ errCode: -2 });
    expect((await findWechatOrder(g.deps.db, cred.mchid, a.orderNo))?.state).toBe('NOTPAY');
    expect((await payWechat(payReqOf(a.action), { outcome: 'fail' })).body).toMatchObject({ errCode: -1 });
    expect((await findWechatOrder(g.deps.db, cred.mchid, a.orderNo))?.state).toBe('PAYERROR');
    expect(await status(a.id)).toBe('pending');
  });

  it('refuses a wrong sign, missing or malformed fields and the 公众号 AppID, naming the field; nothing changes', async () => {
    const cred = await wechatCred();
    const { action, orderNo, id } = await placed('wechat_app');
    const p = payReqOf(action);
    const stranger = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const cases: Array<[string, Record<string, string>, string, string]> = [
      ['sign by another key', resign(p, stranger), 'SIGN_ERROR', 'sign'],
      ['noncestr changed after signing', { ...p, noncestr: `${p.noncestr!.slice(0, -1)}${p.noncestr!.endsWith('a') ? 'b' : 'a'}` }, 'SIGN_ERROR', 'sign'],
      ['timestamp changed after signing', { ...p, timestamp: String(Number(p.timestamp) + 1) }, 'SIGN_ERROR', 'sign'],
      ['no sign', { ...p, sign: '' }, 'PARAM_ERROR', 'sign'],
      ['v2 package', { ...p, package: 'prepay_id=' + p.prepayid }, 'PARAM_ERROR', 'package'],
      ['millisecond timestamp', resign({ ...p, timestamp: String(Date.now()) }, cred.privateKey), 'PARAM_ERROR', 'timestamp'],
      ['noncestr over 32', resign({ ...p, noncestr: 'n'.repeat(33) }, cred.privateKey), 'PARAM_ERROR', 'noncestr'],
      ['the 公众号 AppID', resign({ ...p, appid: cred.appid }, cred.privateKey), 'INVALID_APPID', 'appid'],
      ['an unknown AppID', resign({ ...p, appid: 'wx0123456789abcdef' }, cred.privateKey), 'INVALID_APPID', 'appid'],
      ['another partnerid', resign({ ...p, partnerid: '1900000000' }, cred.privateKey), 'APPID_MCHID_NOT_MATCH', 'partnerid'],
      ['an unknown prepay_id', resign({ ...p, prepayid: `${p.prepayid!.slice(0, -1)}${p.prepayid!.endsWith('Z') ? 'Y' : 'Z'}` }, cred.privateKey), 'INVALID_REQUEST', 'prepayid'],
    ];
    for (const [name, body, code, field] of cases) {
      const res = await payWechat(body);
      expect(res.status, name).toBe(400);
      expect(res.body, name).toMatchObject({ errCode: -1, code, field });
      expect(res.body.errStr, name).toContain(field);
    }
    expect((await findWechatOrder(g.deps.db, cred.mchid, orderNo))?.state).toBe('NOTPAY');
    expect(await status(id)).toBe('pending');
  });

  it('refuses a prepay_id older than 2 hours', async () => {
    const cred = await wechatCred();
    const { action, orderNo } = await placed('wechat_app');
    const order = (await findWechatOrder(g.deps.db, cred.mchid, orderNo))!;
    await g.deps.db('sandbox_orders').where({ provider: 'wechatpay', merchant_id: cred.mchid, out_trade_no: orderNo })
      .update({ data: JSON.stringify({ ...order.data, createdAt: order.data.createdAt - 2 * 3600 }) });
    const res = await payWechat(payReqOf(action));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ errCode: -1, code: 'ORDER_EXPIRED', field: 'prepayid' });
    expect((await findWechatOrder(g.deps.db, cred.mchid, orderNo))?.state).toBe('NOTPAY');
  });

  it('refuses another merchant\'s prepay_id under this AppID, even signed correctly', async () => {
    const other = await createApp(g.deps.db, { name: 'Other shop' });
    const otherPayment = (await g.api('POST', '/v1/payments', { amount: 900, subject: 'Other', out_trade_no: `other_${Date.now()}` },
      { authorization: `Bearer ${other.secret_key}` })).body;
    const row = (await findPayment(g.deps.db, { appId: other.app_id, livemode: false }, otherPayment.id))!;
    const { attempt, result } = await startAttempt(g.deps, row, 'wechat_app');
    if (!result.ok) throw new Error('declined');
    const foreign = payReqOf(result.action).prepayid!;
    const mine = payReqOf((await placed('wechat_app')).action);
    const res = await payWechat(resign({ ...mine, prepayid: foreign }, (await wechatCred()).privateKey));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ errCode: -1, code: 'INVALID_REQUEST', field: 'prepayid' });
    expect((await findWechatOrder(g.deps.db, (await wechatCred(other.app_id)).mchid, attempt.channel_order_no))?.state).toBe('NOTPAY');
  });

  it('the notify of an app order must carry the mobile AppID: the 公众号 one, genuinely signed, is refused', async () => {
    const cred = await wechatCred();
    const { action, id, orderNo } = await placed('wechat_app');
    expect((await payWechat(payReqOf(action), { notify: 'drop' })).body).toEqual({ errCode: 0 });
    const merchant = (await findWechatMerchant(g.deps.db, g.deps.config.masterKeyBytes, cred.mchid))!;
    const order = (await findWechatOrder(g.deps.db, cred.mchid, orderNo))!;
    const send = async (appid: string) => {
      const msg = notifyRequest(merchant, buildNotify(merchant, order.data.notifyUrl, crypto.randomUUID(), 'TRANSACTION.SUCCESS', '支付成功', 'transaction', { ...transactionOf(order), appid }));
      return fetch(`${g.url}/notify/wechatpay/${g.app.app_id}`, { method: 'POST', headers: { 'content-type': msg.contentType, ...msg.headers }, body: msg.body });
    };
    expect((await send(cred.appid)).status).toBe(500);
    expect(await status(id)).toBe('pending');
    expect((await send(cred.appAppid!)).status).toBe(204);
    expect(await status(id)).toBe('succeeded');
  });
});

describe('wechat_app: the mobile-app AppID is not a 公众号', () => {
  it('has no web OAuth at the simulator (the 公众号 AppID has)', async () => {
    const cred = await wechatCred();
    const oauth = (appid: string) => fetch(`${g.url}/sandbox/wechatpay/connect/oauth2/authorize?${new URLSearchParams({ appid, redirect_uri: `${g.deps.config.publicUrl}/pay/x/authorized`, response_type: 'code', scope: 'snsapi_base', state: 'abc' })}`, { redirect: 'manual' })
      .then(async (r) => ({ status: r.status, html: await r.text() }));
    const mobile = await oauth(cred.appAppid!);
    expect(mobile.status).toBe(400);
    expect(mobile.html).toContain('40013');
    expect((await oauth(cred.appid)).html).not.toContain('40013');
  });
});

// --- the cashier ---------------------------------------------------------------------------------

describe('the cashier never offers an in-app code', () => {
  const desktop = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';
  const wechat = 'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36 MicroMessenger/8.0.49';

  it('shows none, and refuses a POST naming one like an unknown code, placing nothing', async () => {
    const p = (await g.api('POST', '/v1/payments', { amount: 800, subject: 'Tea', out_trade_no: `cash_${Date.now()}_${++seq}` })).body;
    for (const ua of [desktop, wechat]) {
      const html = await (await fetch(p.checkout_url, { headers: { 'user-agent': ua } })).text();
      expect(html).toContain('data-channel=');
      expect(html).not.toMatch(/data-channel="[a-z]+_app"/);
    }
    const html = await (await fetch(p.checkout_url, { headers: { 'user-agent': desktop } })).text();
    const token = /name="form_token" value="([^"]+)"/.exec(html)![1]!;
    for (const channel of ['alipay_app', 'wechat_app', 'nope']) {
      const res = await fetch(`${p.checkout_url}/channel`, {
        method: 'POST', redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': desktop },
        body: new URLSearchParams({ form_token: token, channel }),
      });
      expect(res.status, channel).toBe(400);
    }
    // The OAuth return cannot be turned into an app order either.
    const checkoutToken = p.checkout_url.split('/pay/')[1];
    const state = Buffer.from(formTokenFor(g.deps.config.masterKeyBytes, `payer:${checkoutToken}`), 'base64url').toString('hex');
    const back = await fetch(`${p.checkout_url}/authorized?channel=wechat_app&code=abc&state=${state}`, { headers: { 'user-agent': wechat } });
    expect(back.status).toBe(403);
    expect(await g.deps.db('payment_attempts').where({ payment_id: p.id })).toEqual([]);
  });

  it('a payment created for an in-app code offers no channel in the cashier', async () => {
    const p = (await g.api('POST', '/v1/payments', { amount: 800, subject: 'Tea', out_trade_no: `cash_${Date.now()}_${++seq}`, channel: 'alipay_app' })).body;
    const page = await fetch(p.checkout_url, { headers: { 'user-agent': desktop } });
    expect(page.status).toBeLessThan(500);
    expect(await page.text()).not.toContain('data-channel="alipay_app"');
  });
});
