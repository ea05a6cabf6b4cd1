/**
 * Failure paths of the Alipay adapter and simulator: forged and malformed notifies, wrong keys,
 * unknown apps, tampered or broken gateway answers, gateway-side request checks, bad credentials,
 * and the transcript-scrubbing check (no key material in logs or errors, STYLE.md #6).
 */
import crypto from 'node:crypto';
import { inspect } from 'node:util';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alipay } from '../../server/channels/alipay/index.ts';
import { signRequest, signResponse } from '../../server/channels/alipay/sign.ts';
import { beijingTime } from '../../server/channels/alipay/transform.ts';
import { alipaySandbox, scheduledNotifyCount } from '../../server/sandbox/alipay/index.ts';
import { findMerchant } from '../../server/sandbox/alipay/store.ts';
import { ChannelConfigError, ChannelUnavailable, MalformedMessageError, SignatureError } from '../../server/errors.ts';
import { startAlipayHarness, type AlipayHarness } from './alipay-harness.ts';
import { appPrivatePkcs1Pem, appPublicPem, alipayPublicBase64 } from './fixtures/alipay/load.ts';

let h: AlipayHarness;
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

beforeAll(async () => {
  // Public-key mode: these tests build public-key configs and re-sign answers without alipay_cert_sn.
  h = await startAlipayHarness({ mode: 'public-key' });
  // A gateway in the middle that forwards to the simulator and then breaks the answer.
  h.app.post('/fake/:mode/gateway.do', express.text({ type: () => true }), async (req, res) => {
    const upstream = await fetch(`${h.raw.gateway}?${req.originalUrl.split('?')[1]}`, {
      method: 'POST', headers: { 'content-type': req.get('content-type')! }, body: req.body as string,
    });
    const text = await upstream.text();
    const mode = req.params.mode;
    const method = new URLSearchParams(req.originalUrl.split('?')[1]).get('method');
    if (mode.startsWith('unconfirmed-') && method === 'alipay.trade.refund') {
      // Alipay took the refund (the simulator really made it) but says no funds moved yet.
      const merchant = (await findMerchant(h.deps.db, h.deps.masterKey, h.raw.app_id!))!;
      const body = JSON.parse(text).alipay_trade_refund_response;
      return res.type('application/json').send(signResponse('alipay_trade_refund_response', { ...body, fund_change: 'N' }, merchant.alipayPrivateKey));
    }
    if (mode.startsWith('unconfirmed-') && method === 'alipay.trade.fastpay.refund.query') {
      // …and its refund query is refused (a signed business failure).
      const merchant = (await findMerchant(h.deps.db, h.deps.masterKey, h.raw.app_id!))!;
      const subCode = mode.slice('unconfirmed-'.length);
      return res.type('application/json').send(signResponse('alipay_trade_fastpay_refund_query_response', { code: '40004', msg: 'Business Failed', sub_code: subCode, sub_msg: 'refused' }, merchant.alipayPrivateKey));
    }
    if (mode === 'status502') return res.status(502).send('<html>Bad Gateway</html>');
    if (mode === 'garbage') return res.type('text/html').send('<html>maintenance</html>');
    if (mode === 'unsigned') return res.type('application/json').send(text.replace(/,"sign":"[^"]*"/, ''));
    if (mode === 'tamper') return res.type('application/json').send(text.replace(/"trade_status":"[A-Z_]+"/, '"trade_status":"TRADE_SUCCESS"'));
    if (mode === 'resigned') {
      const body = JSON.parse(text).alipay_trade_query_response;
      return res.type('application/json').send(signResponse('alipay_trade_query_response', { ...body, trade_status: 'TRADE_SUCCESS' }, crypto.createPrivateKey(otherKeyPem())));
    }
    res.type('application/json').send(text);
  });
});
afterAll(() => h.stop());

async function paidOrder(channel: 'alipay_pc' | 'alipay_qr' = 'alipay_qr') {
  const o = h.order(channel);
  await h.createAndOpen(o);
  await alipaySandbox.act(h.deps, { appId: h.cred.appId, orderNo: o.orderNo, outcome: 'pay', notify: 'normal' });
  return o;
}

describe('notifies', () => {
  const msg = (body: string, contentType = 'application/x-www-form-urlencoded; charset=utf-8') => ({ headers: {}, contentType, body: Buffer.from(body) });

  it('a forged notify (amount tampered) is a SignatureError, and the notify route answers fail', async () => {
    const o = await paidOrder();
    const real = h.notifyBodies.map((b) => b.toString()).find((b) => new URLSearchParams(b).get('out_trade_no') === o.orderNo)!;
    const forged = new URLSearchParams(real);
    forged.set('total_amount', '0.01');
    expect(await failure(() => alipay.parseNotification(h.cred, msg(forged.toString())))).toBeInstanceOf(SignatureError);
    const res = await fetch(`${h.base}/notify/alipay/gateway`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: forged.toString() });
    expect(res.status).toBe(400);
    expect(await res.text()).not.toBe('success');
    // The untouched notify still verifies.
    expect(await alipay.parseNotification(h.cred, msg(real))).toMatchObject({ kind: 'payment', orderNo: o.orderNo });
  });

  it('an unsigned notify, a non-RSA2 one and one signed by another key are SignatureErrors', async () => {
    const real = new URLSearchParams(h.notifyBodies[0]!.toString());
    const unsigned = new URLSearchParams(real);
    unsigned.delete('sign');
    expect(await failure(() => alipay.parseNotification(h.cred, msg(unsigned.toString())))).toBeInstanceOf(SignatureError);
    const rsa1 = new URLSearchParams(real);
    rsa1.set('sign_type', 'RSA');
    expect(await failure(() => alipay.parseNotification(h.cred, msg(rsa1.toString())))).toBeInstanceOf(SignatureError);
    const other = alipay.parseCredentials({ ...h.raw, alipay_public_key: alipayPublicBase64 });
    expect(await failure(() => alipay.parseNotification(other, msg(real.toString())))).toBeInstanceOf(SignatureError);
  });

  it('a non-form content type or a repeated field is a MalformedMessageError', async () => {
    const real = h.notifyBodies[0]!.toString();
    const asJson = JSON.stringify(Object.fromEntries(new URLSearchParams(real)));
    expect(await failure(() => alipay.parseNotification(h.cred, msg(asJson, 'application/json')))).toBeInstanceOf(MalformedMessageError);
    expect(await failure(() => alipay.parseNotification(h.cred, msg(real, 'text/plain')))).toBeInstanceOf(MalformedMessageError);
    expect(await failure(() => alipay.parseNotification(h.cred, msg(`${real}&total_amount=0.01`)))).toBeInstanceOf(MalformedMessageError);
  });
});

describe('notify retries', () => {
  it('a notify not answered `success` is retried later on a timer (same notify_id); act() still resolves', async () => {
    let refusedNotifyId = '';
    h.app.post('/notify/alipay/refusing', express.urlencoded({ extended: false }), (req, res) => {
      refusedNotifyId = req.body.notify_id;
      res.type('text/plain').send('SUCCESS '); // not exactly `success`
    });
    const o = { ...h.order('alipay_qr'), notifyUrl: `${h.base}/notify/alipay/refusing` };
    await h.createAndOpen(o);
    const before = scheduledNotifyCount();
    await alipaySandbox.act(h.deps, { appId: h.cred.appId, orderNo: o.orderNo, outcome: 'pay', notify: 'normal' });
    expect(refusedNotifyId).toMatch(/^[0-9a-f]{36}$/);
    expect(scheduledNotifyCount()).toBe(before + 1);
  });
});

describe('wrong keys and unknown apps', () => {
  it('a request signed with the wrong app key gets isv.invalid-signature, thrown as ChannelConfigError', async () => {
    const wrong = alipay.parseCredentials({ ...h.raw, private_key: otherKeyPem() });
    const err = await failure(() => alipay.createPayment(wrong, h.order('alipay_qr')));
    expect(err).toBeInstanceOf(ChannelConfigError);
    expect(err.message).toContain('isv.invalid-signature');
    expect(await failure(() => alipay.queryPayment(wrong, 'att_x'))).toBeInstanceOf(ChannelConfigError);
    // The page methods show Alipay's error page instead.
    const page = await alipay.createPayment(wrong, h.order('alipay_pc'));
    if (!page.ok || page.action.type !== 'redirect') throw new Error('expected a redirect');
    const res = await fetch(page.action.url);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('isv.invalid-signature');
  });

  it('an unknown app id gets the unsigned isv.invalid-app-id, thrown as ChannelConfigError', async () => {
    const stranger = alipay.parseCredentials({ ...h.raw, app_id: '2021000999999999' });
    const err = await failure(() => alipay.queryPayment(stranger, 'att_x'));
    expect(err).toBeInstanceOf(ChannelConfigError);
    expect(err.message).toContain('isv.invalid-app-id');
  });

  it('a wrong alipay_public_key makes every answer a SignatureError', async () => {
    const mismatched = alipay.parseCredentials({ ...h.raw, alipay_public_key: alipayPublicBase64 });
    expect(await failure(() => alipay.queryPayment(mismatched, 'att_x'))).toBeInstanceOf(SignatureError);
  });
});

describe('broken gateway answers', () => {
  const via = (mode: string) => alipay.parseCredentials({ ...h.raw, gateway: `${h.base}/fake/${mode}/gateway.do` });

  it('passes a faithful answer through', async () => {
    const o = h.order('alipay_pc');
    await h.createAndOpen(o);
    expect(await alipay.queryPayment(via('faithful'), o.orderNo)).toMatchObject({ status: 'pending' });
  });

  it('a tampered answer, or one re-signed with another key, is a SignatureError', async () => {
    const o = h.order('alipay_pc');
    await h.createAndOpen(o);
    expect(await failure(() => alipay.queryPayment(via('tamper'), o.orderNo))).toBeInstanceOf(SignatureError);
    expect(await failure(() => alipay.queryPayment(via('resigned'), o.orderNo))).toBeInstanceOf(SignatureError);
  });

  it('an unsigned success is a SignatureError', async () => {
    const o = h.order('alipay_pc');
    await h.createAndOpen(o);
    expect(await failure(() => alipay.queryPayment(via('unsigned'), o.orderNo))).toBeInstanceOf(SignatureError);
  });

  it.each(['ACQ.TRADE_NOT_EXIST', 'ACQ.INVALID_PARAMETER'])('a refund Alipay took, whose query is then refused (%s), stays pending', async (subCode) => {
    const o = h.order('alipay_qr');
    await h.createAndOpen(o);
    await alipaySandbox.act(h.deps, { appId: h.cred.appId, orderNo: o.orderNo, outcome: 'pay', notify: 'normal' });
    const refundNo = `${o.orderNo}_r1`;
    const result = await alipay.refund(via(`unconfirmed-${subCode}`), { orderNo: o.orderNo, refundNo, amount: 100, totalAmount: o.amount, currency: 'CNY', reason: null, notifyUrl: o.notifyUrl });
    // Not 'failed': that would give the amount back to refund again while this one goes through.
    expect(result).toEqual({ status: 'pending' });
    expect(await alipay.queryRefund(h.cred, o.orderNo, refundNo)).toEqual({ status: 'succeeded' });
  });

  it('5xx, garbage and an unreachable gateway are ChannelUnavailable', async () => {
    expect(await failure(() => alipay.queryPayment(via('status502'), 'att_x'))).toBeInstanceOf(ChannelUnavailable);
    expect(await failure(() => alipay.queryPayment(via('garbage'), 'att_x'))).toBeInstanceOf(ChannelUnavailable);
    const closed = alipay.parseCredentials({ ...h.raw, gateway: 'http://127.0.0.1:9/gateway.do' });
    expect(await failure(() => alipay.queryPayment(closed, 'att_x'))).toBeInstanceOf(ChannelUnavailable);
  });
});

describe('declines and gateway-side checks', () => {
  it('precreating an order number that was already paid is a decline value, not an exception', async () => {
    const o = await paidOrder('alipay_pc');
    expect(await alipay.createPayment(h.cred, { ...o, channel: 'alipay_qr' })).toEqual({
      ok: false, decline: { code: 'ACQ.TRADE_HAS_SUCCESS', message: '交易已被支付' },
    });
  });

  /** Posts a hand-signed precreate straight to the simulator and returns its parsed answer. */
  async function precreate(overrides: Record<string, string | undefined>, biz: Record<string, unknown> = {}) {
    const params: Record<string, string | undefined> = {
      app_id: h.raw.app_id, method: 'alipay.trade.precreate', charset: 'utf-8', sign_type: 'RSA2', version: '1.0',
      timestamp: beijingTime(Date.now() / 1000),
      biz_content: JSON.stringify({ out_trade_no: `att_chk_${crypto.randomUUID().slice(0, 8)}`, total_amount: '1.00', subject: 'check', ...biz }),
      ...overrides,
    };
    const clean = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) as Record<string, string>;
    if (!('sign' in overrides)) clean.sign = signRequest(clean, crypto.createPrivateKey(h.raw.private_key!));
    const res = await fetch(h.raw.gateway!, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(clean) });
    const json = JSON.parse(await res.text());
    return (json.alipay_trade_precreate_response ?? json.error_response) as Record<string, string>;
  }

  it('accepts a well-formed request, with an empty parameter dropped before verifying', async () => {
    expect(await precreate({ app_auth_token: '' })).toMatchObject({ code: '10000' });
  });

  it.each([
    [{ sign: undefined }, {}, '40001', 'isv.missing-signature'],
    [{ timestamp: '2026/03/01 10:00:00' }, {}, '40002', 'isv.invalid-timestamp'],
    [{ charset: 'gbk' }, {}, '40002', 'isv.invalid-charset'],
    [{ version: '2.0' }, {}, '40002', 'isv.invalid-version'],
    [{ sign_type: 'RSA' }, {}, '40002', 'isv.invalid-signature-type'],
    [{ sign: 'AAAA' }, {}, '40002', 'isv.invalid-signature'],
    [{ biz_content: '{not json' }, {}, '40004', 'ACQ.INVALID_PARAMETER'],
    [{}, { total_amount: '0.001' }, '40004', 'ACQ.INVALID_PARAMETER'],
    [{}, { total_amount: '0.00' }, '40004', 'ACQ.INVALID_PARAMETER'],
    [{}, { total_amount: '100000000.01' }, '40004', 'ACQ.INVALID_PARAMETER'],
    [{}, { out_trade_no: 'x'.repeat(65) }, '40004', 'ACQ.INVALID_PARAMETER'],
  ])('refuses %j %j with %s %s', async (overrides, biz, code, subCode) => {
    expect(await precreate(overrides, biz)).toMatchObject({ code, sub_code: subCode });
  });

  it('refuses a time_expire already past', async () => {
    expect(await precreate({}, { time_expire: beijingTime(Date.now() / 1000 - 60) })).toMatchObject({ code: '40004', sub_code: 'ACQ.INVALID_PARAMETER' });
  });

  it('the largest amount Alipay allows passes', async () => {
    expect(await precreate({}, { total_amount: '100000000.00' })).toMatchObject({ code: '10000' });
  });
});

describe('credentials', () => {
  const cfg = { app_id: '2021000122671080', private_key: appPrivatePkcs1Pem, alipay_public_key: alipayPublicBase64 };

  it('accepts PKCS#1 PEM and a bare base64 key, and defaults to the production gateway', () => {
    expect(alipay.parseCredentials(cfg).gateway).toBe('https://openapi.alipay.com/gateway.do');
  });

  it.each([
    [{ ...cfg, app_id: '12345' }, 'app_id'],
    [{ ...cfg, private_key: undefined }, 'private_key'],
    [{ ...cfg, private_key: appPrivatePkcs1Pem.slice(0, 400) }, 'private_key'],
    [{ ...cfg, private_key: appPublicPem }, 'private_key'],
    [{ ...cfg, alipay_public_key: appPrivatePkcs1Pem }, 'alipay_public_key'],
    [{ ...cfg, alipay_public_key: appPublicPem }, "app's own public key"],
    [{ ...cfg, seller_id: '1234' }, 'seller_id'],
    [{ ...cfg, gateway: 'ftp://x/gateway.do' }, 'gateway'],
  ])('refuses a bad config naming the field (%#)', async (config, field) => {
    const err = await failure(() => alipay.parseCredentials(config));
    expect(err).toBeInstanceOf(ChannelConfigError);
    expect(err.message).toContain(field);
  });
});

describe('transcript scrubbing', () => {
  it('no private key appears in the logs, in thrown errors or in a printed credential', async () => {
    const merchant = (await findMerchant(h.deps.db, h.deps.masterKey, h.raw.app_id!))!;
    const secrets = [h.raw.private_key!, merchant.alipayPrivateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), appPrivatePkcs1Pem];
    // Every 64-character line of each PEM body, and the keys' DER in one line of base64.
    const fragments = secrets.flatMap((pem) => pem.split('\n').filter((l) => l.length >= 40 && !l.startsWith('-----')));
    fragments.push(...secrets.map((pem) => crypto.createPrivateKey(pem).export({ format: 'der', type: 'pkcs1' }).toString('base64').slice(200, 260)));

    expect(caught.length).toBeGreaterThan(15);
    const transcript = [
      ...h.logLines,
      ...caught.map((e) => `${(e as Error).message}\n${(e as Error).stack}\n${JSON.stringify(e)}\n${inspect(e, { depth: 5 })}`),
      JSON.stringify(h.cred),
      inspect(h.cred, { depth: 5 }),
    ].join('\n');
    expect(h.logLines.length).toBeGreaterThan(0);
    for (const f of fragments) expect(transcript.includes(f), `key fragment ${f.slice(0, 12)}… leaked`).toBe(false);
  });
});
