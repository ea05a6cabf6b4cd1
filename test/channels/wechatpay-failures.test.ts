/**
 * Failure paths of the WeChat Pay adapter and simulator: forged, stale, probing and malformed
 * notifies, wrong keys, tampered or broken API answers, the simulator's request checks, bad
 * credentials, and the transcript-scrubbing check (no key material in logs or errors, STYLE.md #6).
 */
import crypto from 'node:crypto';
import { inspect } from 'node:util';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchangeOAuthCode, wechatpay } from '../../server/channels/wechatpay/index.ts';
import { buildAuthorization, signedHeaders } from '../../server/channels/wechatpay/sign.ts';
import { rfc3339Beijing } from '../../server/channels/wechatpay/transform.ts';
import { findMerchant } from '../../server/sandbox/wechatpay/store.ts';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, MalformedMessageError, SignatureError } from '../../server/errors.ts';
import { startWechatpayHarness, type WechatpayHarness } from './wechatpay-harness.ts';

let h: WechatpayHarness;
let platformKey: crypto.KeyObject;
const caught: unknown[] = [];
/** Runs fn expecting a throw; keeps the error for the scrubbing check. */
async function failure(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    caught.push(err);
    return err as Error;
  }
  throw new Error('expected a failure');
}
const otherKeyPem = () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const now = () => Math.floor(Date.now() / 1000);
const lower = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));

beforeAll(async () => {
  h = await startWechatpayHarness();
  platformKey = (await findMerchant(h.deps.db, h.deps.masterKey, h.raw.mchid))!.platformPrivateKey;
  // An API in the middle: forwards to the simulator (re-signing the request for the real path), then breaks the answer.
  h.app.use('/fake/:mode', express.raw({ type: () => true }), async (req, res) => {
    const path = req.originalUrl.replace(/^\/fake\/[^/]+/, '/sandbox/wechatpay');
    const body = Buffer.isBuffer(req.body) ? req.body.toString() : '';
    const authorization = buildAuthorization({ mchid: h.raw.mchid, serialNo: h.raw.serial_no, privateKey: crypto.createPrivateKey(h.raw.private_key), method: req.method, pathWithQuery: path, body });
    const upstream = await fetch(`${h.base}${path}`, { method: req.method, headers: { authorization, 'content-type': 'application/json' }, body: req.method === 'GET' ? undefined : body });
    const text = await upstream.text();
    const copy = (names: string[]) => { for (const n of names) if (upstream.headers.get(n)) res.set(n, upstream.headers.get(n)!); };
    const signedNames = ['wechatpay-timestamp', 'wechatpay-nonce', 'wechatpay-signature', 'wechatpay-serial'];
    const mode = String(req.params.mode);
    res.status(upstream.status).type('application/json');
    if (mode === 'faithful') copy(signedNames);
    if (mode === 'tamper') { copy(signedNames); return res.send(text.replace('"NOTPAY"', '"SUCCESS"')); }
    if (mode === 'resigned') return res.set(signedHeaders(text.replace('"NOTPAY"', '"SUCCESS"'), crypto.createPrivateKey(otherKeyPem()), h.raw.wechatpay_public_key_id)).send(text.replace('"NOTPAY"', '"SUCCESS"'));
    if (mode === 'stale') return res.set(signedHeaders(text, platformKey, h.raw.wechatpay_public_key_id, String(now() - 300))).send(text);
    if (mode === 'probe') { copy(signedNames); return res.set('Wechatpay-Signature', 'WECHATPAY/SIGNTEST/AAAA').send(text); }
    if (mode === 'status502') return res.status(502).type('text/html').send('<html>Bad Gateway</html>');
    if (mode === 'garbage') return res.status(200).type('text/html').send('<html>maintenance</html>');
    if (mode === 'unsigned-not-found') return res.status(404).send('{"code":"ORDER_NOT_EXIST","message":"订单不存在"}');
    if (mode === 'unsigned-sign-error') return res.status(401).send('{"code":"SIGN_ERROR","message":"签名错误"}');
    res.send(text); // 'unsigned': the answer without its signature headers
  });
});
afterAll(() => h.stop());

async function paidOrder(channel: 'wechat_native' | 'wechat_h5' = 'wechat_native') {
  const o = h.order(channel);
  await h.pay(o, await h.create(o));
  return o;
}

describe('notifies', () => {
  const realNotify = async () => {
    const o = await paidOrder();
    const c = h.captured.find((x) => x.mchid === h.raw.mchid && h.paymentNotifies(o.orderNo).length > 0 && x.body.toString().includes('TRANSACTION.SUCCESS'))!;
    return { o, body: c.body.toString(), headers: c.headers };
  };
  const msg = (body: string, headers: Record<string, string | undefined>, contentType = 'application/json') => ({ headers, contentType, body: Buffer.from(body) });
  const resign = (body: string, opts: { ts?: number; serial?: string; key?: crypto.KeyObject } = {}) =>
    lower(signedHeaders(body, opts.key ?? platformKey, opts.serial ?? h.raw.wechatpay_public_key_id, String(opts.ts ?? now())));

  it('a forged notify (body changed, headers kept) is a SignatureError, and the notify route answers 500 FAIL', async () => {
    const { body, headers } = await realNotify();
    const forged = body.replace('"summary":"支付成功"', '"summary":"forged"');
    expect(await failure(() => wechatpay.parseNotification(h.cred, msg(forged, headers)))).toBeInstanceOf(SignatureError);
    const res = await fetch(`${h.base}/notify/wechatpay/${h.raw.mchid}`, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(forged)) }, body: forged });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ code: 'FAIL', message: expect.any(String) });
    // The untouched notify still verifies (a duplicate is for the core to recognise by its id).
    expect(await wechatpay.parseNotification(h.cred, msg(body, headers))).toMatchObject({ kind: 'payment', status: 'succeeded' });
  });

  it('a notify signed by another key, or naming an unknown serial, or without headers, is a SignatureError', async () => {
    const { body } = await realNotify();
    expect(await failure(() => wechatpay.parseNotification(h.cred, msg(body, resign(body, { key: crypto.createPrivateKey(otherKeyPem()) }))))).toBeInstanceOf(SignatureError);
    expect((await failure(() => wechatpay.parseNotification(h.cred, msg(body, resign(body, { serial: 'PUB_KEY_ID_0999' }))))).message).toContain('names no usable key');
    expect(await failure(() => wechatpay.parseNotification(h.cred, msg(body, {})))).toBeInstanceOf(SignatureError);
  });

  it('the wrong APIv3 key cannot decrypt: SignatureError', async () => {
    const { body, headers } = await realNotify();
    const wrong = wechatpay.parseCredentials({ ...h.raw, apiv3_key: 'Z'.repeat(32) });
    expect((await failure(() => wechatpay.parseNotification(wrong, msg(body, headers)))).message).toMatch(/apiv3_key/);
  });

  it('bad base64 or an unknown algorithm in a correctly signed notify is a MalformedMessageError', async () => {
    const { body } = await realNotify();
    const badBase64 = body.replace(/"ciphertext":"[^"]+"/, '"ciphertext":"%%%not base64%%%"');
    expect(await failure(() => wechatpay.parseNotification(h.cred, msg(badBase64, resign(badBase64))))).toBeInstanceOf(MalformedMessageError);
    const sm4 = body.replace('AEAD_AES_256_GCM', 'AEAD_SM4_GCM');
    expect(await failure(() => wechatpay.parseNotification(h.cred, msg(sm4, resign(sm4))))).toBeInstanceOf(MalformedMessageError);
  });

  it('stale timestamps are refused at 5 minutes; 4:50 old still passes', async () => {
    const { body } = await realNotify();
    expect((await failure(() => wechatpay.parseNotification(h.cred, msg(body, resign(body, { ts: now() - 300 }))))).message).toMatch(/5 minutes/);
    expect((await failure(() => wechatpay.parseNotification(h.cred, msg(body, resign(body, { ts: now() + 300 }))))).message).toMatch(/5 minutes/);
    expect(await wechatpay.parseNotification(h.cred, msg(body, resign(body, { ts: now() - 290 })))).toMatchObject({ kind: 'payment' });
  });

  it('a WECHATPAY/SIGNTEST/ probe is refused with a non-2xx answer', async () => {
    const { body, headers } = await realNotify();
    const probe = { ...headers, 'wechatpay-signature': `WECHATPAY/SIGNTEST/${headers['wechatpay-signature']}` };
    expect((await failure(() => wechatpay.parseNotification(h.cred, msg(body, probe)))).message).toMatch(/SIGNTEST/);
    const res = await fetch(`${h.base}/notify/wechatpay/${h.raw.mchid}`, { method: 'POST', headers: probe, body });
    expect(res.status).toBe(500);
  });

  it('a non-JSON content type, a non-JSON body or a 1 MB body is a MalformedMessageError', async () => {
    const { body, headers } = await realNotify();
    expect(await failure(() => wechatpay.parseNotification(h.cred, msg(body, headers, 'application/x-www-form-urlencoded')))).toBeInstanceOf(MalformedMessageError);
    expect(await failure(() => wechatpay.parseNotification(h.cred, msg('<xml>v2</xml>', resign('<xml>v2</xml>'))))).toBeInstanceOf(MalformedMessageError);
    const huge = JSON.stringify({ pad: 'x'.repeat(1024 * 1024) });
    expect(await failure(() => wechatpay.parseNotification(h.cred, msg(huge, resign(huge))))).toBeInstanceOf(MalformedMessageError);
  });
});

describe('broken API answers', () => {
  const via = (mode: string) => wechatpay.parseCredentials({ ...h.raw, base_url: `${h.base}/fake/${mode}` });
  const unpaid = async () => {
    const o = h.order('wechat_native');
    await h.create(o);
    return o.orderNo;
  };

  it('passes a faithful answer through', async () => {
    expect(await wechatpay.queryPayment(via('faithful'), await unpaid())).toMatchObject({ status: 'pending' });
  });

  it('a tampered answer, one re-signed with another key, an unsigned one, a stale one or a probe is a SignatureError', async () => {
    const no = await unpaid();
    for (const mode of ['tamper', 'resigned', 'unsigned', 'stale', 'probe']) {
      expect(await failure(() => wechatpay.queryPayment(via(mode), no)), mode).toBeInstanceOf(SignatureError);
    }
  });

  it('an unsigned ORDER_NOT_EXIST is not believed; an unsigned SIGN_ERROR is believed only as a fault', async () => {
    expect(await failure(() => wechatpay.queryPayment(via('unsigned-not-found'), 'att_x1'))).toBeInstanceOf(SignatureError);
    expect(await failure(() => wechatpay.closePayment(via('unsigned-not-found'), 'att_x1'))).toBeInstanceOf(SignatureError);
    expect(await failure(() => wechatpay.queryPayment(via('unsigned-sign-error'), 'att_x1'))).toBeInstanceOf(ChannelConfigError);
  });

  it('5xx, garbage and an unreachable API are ChannelUnavailable', async () => {
    expect(await failure(() => wechatpay.queryPayment(via('status502'), 'att_x1'))).toBeInstanceOf(ChannelUnavailable);
    expect(await failure(() => wechatpay.queryPayment(via('garbage'), 'att_x1'))).toBeInstanceOf(ChannelUnavailable);
    const closed = wechatpay.parseCredentials({ ...h.raw, base_url: 'http://127.0.0.1:9' });
    expect(await failure(() => wechatpay.queryPayment(closed, 'att_x1'))).toBeInstanceOf(ChannelUnavailable);
  });
});

describe('wrong keys and ids', () => {
  it('a request signed with the wrong merchant key gets SIGN_ERROR, thrown as ChannelConfigError', async () => {
    // Without the API v2 fields: their apiclient_cert belongs to the registered key, and parsing refuses the pair.
    const { api_v2_key: _k, apiclient_cert: _c, v2_base_url: _u, v2_ca_certificate: _a, ...v3 } = h.raw;
    const wrong = wechatpay.parseCredentials({ ...v3, private_key: otherKeyPem() });
    const err = await failure(() => wechatpay.createPayment(wrong, h.order('wechat_native')));
    expect(err).toBeInstanceOf(ChannelConfigError);
    expect(err.message).toContain('SIGN_ERROR');
    expect(await failure(() => wechatpay.queryPayment(wrong, 'att_x1'))).toBeInstanceOf(ChannelConfigError);
  });

  it('a wrong serial_no, an unknown mchid or an appid of another merchant are ChannelConfigErrors', async () => {
    expect((await failure(() => wechatpay.queryPayment(wechatpay.parseCredentials({ ...h.raw, serial_no: 'ABCDEF0123456789' }), 'att_x1'))).message).toContain('SIGN_ERROR');
    expect((await failure(() => wechatpay.queryPayment(wechatpay.parseCredentials({ ...h.raw, mchid: '1999999999' }), 'att_x1'))).message).toContain('MCH_NOT_EXISTS');
    const otherAppid = wechatpay.parseCredentials({ ...h.raw, appid: 'wx0000000000000000' });
    expect((await failure(() => wechatpay.createPayment(otherAppid, h.order('wechat_native')))).message).toContain('APPID_MCHID_NOT_MATCH');
  });

  it('a wrong wechatpay_public_key makes every answer a SignatureError', async () => {
    const pub = crypto.createPublicKey(otherKeyPem()).export({ format: 'pem', type: 'spki' }).toString();
    expect(await failure(() => wechatpay.queryPayment(wechatpay.parseCredentials({ ...h.raw, wechatpay_public_key: pub }), 'att_x1'))).toBeInstanceOf(SignatureError);
  });

  it('OAuth: a wrong app_secret is a ChannelConfigError, a missing one too; an unreachable API is ChannelUnavailable', async () => {
    const wrong = wechatpay.parseCredentials({ ...h.raw, app_secret: 'f'.repeat(32) });
    expect((await failure(() => exchangeOAuthCode(wrong, 'A'.repeat(32)))).message).toContain('40125');
    const { app_secret: _drop, ...noSecret } = h.raw;
    expect(await failure(() => exchangeOAuthCode(wechatpay.parseCredentials(noSecret), 'A'.repeat(32)))).toBeInstanceOf(ChannelConfigError);
    expect(await failure(() => exchangeOAuthCode(wechatpay.parseCredentials({ ...h.raw, api_base_url: 'http://127.0.0.1:9' }), 'A'.repeat(32)))).toBeInstanceOf(ChannelUnavailable);
  });
});

describe('requests the adapter refuses to send', () => {
  it('H5 without a client IP names client_ip; JSAPI without an openid names openid', async () => {
    const h5 = await failure(() => wechatpay.createPayment(h.cred, { ...h.order('wechat_h5'), clientIp: null }));
    expect(h5).toBeInstanceOf(ChannelRequestError);
    expect(h5.message).toContain('client_ip');
    expect((await failure(() => wechatpay.createPayment(h.cred, { ...h.order('wechat_h5'), clientIp: 'not-an-ip' }))).message).toContain('client_ip');
    expect((await failure(() => wechatpay.createPayment(h.cred, { ...h.order('wechat_jsapi'), openid: undefined }))).message).toContain('openid');
  });

  it('another currency, a fractional amount or an Alipay channel never reach WeChat', async () => {
    expect(await failure(() => wechatpay.createPayment(h.cred, { ...h.order('wechat_native'), currency: 'USD' }))).toBeInstanceOf(ChannelRequestError);
    expect(await failure(() => wechatpay.createPayment(h.cred, { ...h.order('wechat_native'), amount: 12.5 }))).toBeInstanceOf(RangeError);
    expect(await failure(() => wechatpay.createPayment(h.cred, { ...h.order('wechat_native'), channel: 'alipay_pc' }))).toBeInstanceOf(ChannelRequestError);
  });

  it('an openid from another appid is refused by WeChat with OPENID_MISMATCH', async () => {
    const err = await failure(() => wechatpay.createPayment(h.cred, { ...h.order('wechat_jsapi'), openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' }));
    expect(err).toMatchObject({ name: 'ChannelRequestError', code: 'OPENID_MISMATCH' });
  });
});

describe('refund refusals are values', () => {
  const refund = (orderNo: string, refundNo: string, amount: number, totalAmount = 1234) =>
    wechatpay.refund(h.cred, { orderNo, refundNo, amount, totalAmount, currency: 'CNY', notifyUrl: `${h.base}/notify/wechatpay/${h.raw.mchid}` });

  it('unknown order, unpaid order, a wrong total and a reused out_refund_no fail with WeChat\'s code', async () => {
    expect((await refund('att_unknown_1', 'r_unknown', 1)).failureMessage).toMatch(/^RESOURCE_NOT_EXISTS/);
    const o = h.order('wechat_native');
    await h.create(o);
    expect((await refund(o.orderNo, `${o.orderNo}_r`, 1)).failureMessage).toMatch(/^INVALID_REQUEST/);
    const paid = await paidOrder();
    expect((await refund(paid.orderNo, `${paid.orderNo}_r`, 1, 999)).failureMessage).toMatch(/^INVALID_REQUEST/);
    expect((await refund(paid.orderNo, `${paid.orderNo}_r1`, 100)).status).toBe('pending');
    expect((await refund(paid.orderNo, `${paid.orderNo}_r1`, 200)).failureMessage).toMatch(/^INVALID_REQUEST/);
  });
});

describe('the simulator checks requests like WeChat Pay', () => {
  async function v3(method: 'GET' | 'POST', path: string, body?: unknown, opts: { ts?: number; tamper?: boolean; mchid?: string } = {}) {
    const pathWithQuery = `/sandbox/wechatpay${path}`;
    const text = body === undefined ? '' : JSON.stringify(body);
    const authorization = buildAuthorization({
      mchid: opts.mchid ?? h.raw.mchid, serialNo: h.raw.serial_no, privateKey: crypto.createPrivateKey(h.raw.private_key), method, pathWithQuery, body: text,
      timestamp: String(opts.ts ?? now()),
    });
    const res = await fetch(`${h.base}${pathWithQuery}`, {
      method, headers: { authorization, 'content-type': 'application/json', accept: 'application/json' }, body: method === 'GET' ? undefined : opts.tamper ? `${text} ` : text,
    });
    return { status: res.status, headers: res.headers, json: (await res.json().catch(() => undefined)) as { code: string; message: string; detail?: { field?: string } } };
  }
  const native = (over: Record<string, unknown> = {}) => ({
    appid: h.raw.appid, mchid: h.raw.mchid, description: '测试', out_trade_no: `chk_${crypto.randomUUID().slice(0, 8)}`,
    notify_url: `${h.base}/notify/wechatpay/${h.raw.mchid}`, amount: { total: 100, currency: 'CNY' }, ...over,
  });

  it('accepts a well-formed order, with the out_trade_no characters WeChat allows', async () => {
    const ok = await v3('POST', '/v3/pay/transactions/native', native({ out_trade_no: `a-b_c|d*${Date.now()}`, time_expire: rfc3339Beijing(now() + 600) }));
    expect(ok.status).toBe(200);
    expect(ok.json).toHaveProperty('code_url');
  });

  it.each([
    [{ out_trade_no: 'abc12' }, 'out_trade_no'],
    [{ out_trade_no: 'x'.repeat(33) }, 'out_trade_no'],
    [{ out_trade_no: 'has space 1' }, 'out_trade_no'],
    [{ amount: { total: 0, currency: 'CNY' } }, 'amount.total'],
    [{ amount: { total: 1.5, currency: 'CNY' } }, 'amount.total'],
    [{ amount: { total: 100, currency: 'USD' } }, 'amount.currency'],
    [{ amount: undefined }, 'amount'],
    [{ description: 'd'.repeat(128) }, 'description'],
    [{ description: undefined }, 'description'],
    [{ time_expire: '2026-03-01 10:00:00' }, 'time_expire'],
    [{ time_expire: rfc3339Beijing(Date.now() / 1000 - 60) }, 'time_expire'],
    [{ notify_url: 'https://gw.example/notify?x=1' }, 'notify_url'],
    [{ notify_url: 'ftp://gw.example/notify' }, 'notify_url'],
    [{ appid: undefined }, 'appid'],
  ])('refuses %j with PARAM_ERROR naming %s', async (over, field) => {
    const r = await v3('POST', '/v3/pay/transactions/native', native(over));
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'PARAM_ERROR', detail: { field } });
    expect(r.json.message).toContain(`/body/${field.replace('.', '/')}`);
  });

  it.each([
    [{}, 'scene_info'],
    [{ scene_info: { payer_client_ip: '999.1.1.1', h5_info: { type: 'Wap' } } }, 'scene_info.payer_client_ip'],
    [{ scene_info: { payer_client_ip: '203.0.113.7', h5_info: { type: 'Web' } } }, 'scene_info.h5_info.type'],
  ])('H5 refuses %j naming %s', async (over, field) => {
    expect((await v3('POST', '/v3/pay/transactions/h5', native(over))).json).toMatchObject({ code: 'PARAM_ERROR', detail: { field } });
  });

  it('JSAPI needs payer.openid', async () => {
    expect((await v3('POST', '/v3/pay/transactions/jsapi', native())).json).toMatchObject({ code: 'PARAM_ERROR', detail: { field: 'payer' } });
  });

  it('refuses stale, tampered and unknown-merchant requests; signs its error answers', async () => {
    const stale = await v3('GET', `/v3/pay/transactions/out-trade-no/att_x1?mchid=${h.raw.mchid}`, undefined, { ts: now() - 300 });
    expect(stale).toMatchObject({ status: 401, json: { code: 'SIGN_ERROR' } });
    expect(stale.headers.get('wechatpay-serial')).toBe(h.raw.wechatpay_public_key_id);
    expect(await v3('POST', '/v3/pay/transactions/native', native(), { tamper: true })).toMatchObject({ status: 401, json: { code: 'SIGN_ERROR' } });
    expect(await v3('GET', '/v3/pay/transactions/out-trade-no/att_x1?mchid=1999999999', undefined, { mchid: '1999999999' })).toMatchObject({ status: 400, json: { code: 'MCH_NOT_EXISTS' } });
    expect(await v3('GET', '/v3/pay/transactions/out-trade-no/att_x1')).toMatchObject({ status: 400, json: { code: 'PARAM_ERROR' } });
    expect(await v3('GET', '/v3/pay/transactions/id/4200000000')).toMatchObject({ status: 404, json: { code: 'NOT_FOUND' } });
    const bare = await fetch(`${h.base}/sandbox/wechatpay/v3/pay/transactions/native`, { method: 'POST', body: '{}' });
    expect(bare.status).toBe(401);
  });
});

describe('credentials', () => {
  const base = () => ({ ...h.raw });

  it('defaults to the production API, and to open.weixin.qq.com / api.weixin.qq.com for OAuth', () => {
    const { base_url: _b, ...prod } = base();
    const cred = wechatpay.parseCredentials(prod);
    expect(cred.baseUrl).toBe('https://api.mch.weixin.qq.com');
    expect(cred.oauthBaseUrl).toBe('https://open.weixin.qq.com');
    expect(cred.apiBaseUrl).toBe('https://api.weixin.qq.com');
  });

  it.each([
    [{ mchid: '12ab' }, 'mchid'],
    [{ appid: 'wxnothex' }, 'appid'],
    [{ serial_no: 'xyz' }, 'serial_no'],
    [{ private_key: undefined }, 'private_key'],
    [{ private_key: 'not a key' }, 'private_key'],
    [{ apiv3_key: 'short' }, 'apiv3_key'],
    [{ wechatpay_public_key: undefined }, 'wechatpay_public_key'],
    [{ wechatpay_public_key_id: 'KEY_1' }, 'wechatpay_public_key_id'],
    [{ wechatpay_public_key: undefined, wechatpay_public_key_id: undefined }, 'platform_certificates'],
    [{ platform_certificates: [{ public_key: 'x' }] }, 'platform_certificates.0'],
    [{ base_url: 'ftp://x' }, 'base_url'],
    [{ app_secret: 'a b' }, 'app_secret'],
  ])('refuses a bad config naming the field (%#)', async (over, field) => {
    const err = await failure(() => wechatpay.parseCredentials({ ...base(), ...over }));
    expect(err).toBeInstanceOf(ChannelConfigError);
    expect(err.message).toContain(field);
  });

  it('refuses the merchant\'s own public key as the WeChat Pay public key', async () => {
    const own = crypto.createPublicKey(h.raw.private_key).export({ format: 'pem', type: 'spki' }).toString();
    expect((await failure(() => wechatpay.parseCredentials({ ...base(), wechatpay_public_key: own }))).message).toContain("merchant's own public key");
  });
});

describe('transcript scrubbing', () => {
  it('no private key, APIv3 key or AppSecret appears in the logs, in thrown errors or in a printed credential', async () => {
    const secrets = [h.raw.private_key, platformKey.export({ format: 'pem', type: 'pkcs8' }).toString()];
    const fragments = secrets.flatMap((pem: string) => pem.split('\n').filter((l) => l.length >= 40 && !l.startsWith('-----')));
    fragments.push(...secrets.map((pem) => crypto.createPrivateKey(pem).export({ format: 'der', type: 'pkcs1' }).toString('base64').slice(200, 260)));
    fragments.push(h.raw.apiv3_key, h.raw.app_secret, Buffer.from(h.raw.apiv3_key).toString('hex').slice(0, 40));

    expect(caught.length).toBeGreaterThan(30);
    const transcript = [
      ...h.logLines,
      ...caught.map((e) => `${(e as Error).message}\n${(e as Error).stack}\n${JSON.stringify(e)}\n${inspect(e, { depth: 5 })}`),
      JSON.stringify(h.cred),
      inspect(h.cred, { depth: 5 }),
      String(h.cred.appSecret),
      `${h.cred.appSecret}`,
    ].join('\n');
    expect(h.logLines.length).toBeGreaterThan(0);
    for (const f of fragments) expect(transcript.includes(f), `secret fragment ${f.slice(0, 6)}… leaked`).toBe(false);
  });
});
