/**
 * The Alipay simulator's certificate mode and fund-out over real HTTP, with hand-built signed
 * requests and the adapter's callGateway: provisioning in certificate mode, the SN checks, the
 * alipay_cert_sn beside "sign", uni.transfer (success, idempotent repeat, different-body refusal,
 * concurrency, scripted outcomes, bounds), common.query by each id, and the signed
 * alipay.fund.trans.order.changed message on the app's gateway URL.
 */
import crypto from 'node:crypto';
import express from 'express';
import { AlipaySdk } from 'alipay-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alipay, callGateway, type AlipayCredentials } from '../../server/channels/alipay/index.ts';
import { certPublicKey, certSn, rootCertSn } from '../../server/channels/alipay/cert.ts';
import { readSignedResponse, signRequest, verifyNotify, verifyResponse } from '../../server/channels/alipay/sign.ts';
import { nowBeijing } from '../../server/channels/alipay/transform.ts';
import {
  alipaySandbox, cancelScheduledNotifies, createAlipaySandboxRouter, dropFundMessages, resumeFundMessages, sandboxFundPaidCount, scheduledNotifyCount,
} from '../../server/sandbox/alipay/index.ts';
import { findMerchant, insertMerchant } from '../../server/sandbox/alipay/store.ts';
import { ChannelUnavailable } from '../../server/errors.ts';
import { startSandboxServer, waitFor } from './sandbox-server.ts';
import { openTestDb, type TestDb } from '../api/webhook-helpers.ts';

type World = Awaited<ReturnType<typeof startSandboxServer>>;
let w: World;
/** SQLite in memory, or a fresh PostgreSQL schema with TEST_DATABASE_URL. */
let testDb: TestDb;
/** Provisioned with an app gateway URL (应用网关) on this server. */
let raw: Record<string, string>;
let cred: AlipayCredentials;
const messages: Array<Record<string, string>> = [];
let seq = 0;

const TRANSFER = 'alipay.fund.trans.uni.transfer';
const QUERY = 'alipay.fund.trans.common.query';

beforeAll(async () => {
  testDb = await openTestDb();
  w = await startSandboxServer({ db: testDb.db });
  w.app.use('/sandbox/alipay', createAlipaySandboxRouter(w.deps));
  w.app.post('/notify/alipay/fundapp', express.urlencoded({ extended: false }), (req, res) => {
    messages.push({ ...(req.body as Record<string, string>) });
    res.type('text/plain').send('success');
  });
  raw = (await (await alipaySandbox.draftMerchant(w.deps)).register(w.deps.db, { appId: 'fundapp', notifyUrl: `${w.base}/notify/alipay/fundapp` })) as Record<string, string>;
  cred = alipay.parseCredentials(raw);
});
afterAll(async () => {
  cancelScheduledNotifies();
  await new Promise((resolve) => w.server.close(resolve));
  await testDb.close();
});

const outBizNo = () => `fund_${Date.now()}_${++seq}`;
function transferBiz(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    out_biz_no: outBizNo(), trans_amount: '12.88', product_code: 'TRANS_ACCOUNT_NO_PWD', biz_scene: 'DIRECT_TRANSFER', order_title: '十一月佣金',
    payee_info: { identity: '2088102146225135', identity_type: 'ALIPAY_USER_ID' }, remark: 'commission', ...over,
  };
}
const call = (method: string, biz: Record<string, unknown>, c: AlipayCredentials = cred) => callGateway(c, method, biz);
const messagesFor = (no: string) => messages.filter((m) => JSON.parse(m.biz_content ?? '{}').out_biz_no === no);

/** A request signed by hand (the app's private key), with or without the two SN params; the raw answer text. */
async function postSigned(method: string, biz: Record<string, unknown>, sns: { app_cert_sn?: string; alipay_root_cert_sn?: string }, privateKey = raw.private_key!, appId = raw.app_id!): Promise<string> {
  const params: Record<string, string> = {
    app_id: appId, method, charset: 'utf-8', sign_type: 'RSA2', timestamp: nowBeijing(), version: '1.0', biz_content: JSON.stringify(biz),
    ...Object.fromEntries(Object.entries(sns).filter(([, v]) => v !== undefined)) as Record<string, string>,
  };
  params.sign = signRequest(params, crypto.createPrivateKey(privateKey));
  const res = await fetch(raw.gateway!, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8' }, body: new URLSearchParams(params) });
  expect(res.status).toBe(200);
  return res.text();
}
const keyOf = (method: string) => `${method.replace(/\./g, '_')}_response`;
const answerOf = (text: string, method: string) => JSON.parse(text)[keyOf(method)] as Record<string, string>;
const sns = () => ({ app_cert_sn: cred.certMode!.appCertSn, alipay_root_cert_sn: cred.certMode!.alipayRootCertSn });

describe('provisioning in certificate mode', () => {
  it('returns the three certificates beside alipay_public_key, and parseCredentials takes certificate mode', async () => {
    for (const k of ['app_cert', 'alipay_public_cert', 'alipay_root_cert']) expect(raw[k]).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(cred.certMode).toBeDefined();
    expect(certPublicKey(raw.alipay_public_cert!).equals(crypto.createPublicKey(raw.alipay_public_key!))).toBe(true);
    const app = new crypto.X509Certificate(raw.app_cert!);
    expect(app.subject).toContain(`CN=${raw.app_id}`);
    expect(app.issuer).toContain('CN=Ant Financial Certification Authority R1');
    expect(app.verify(certPublicKey(raw.alipay_root_cert!))).toBe(true);
    // The simulator stored the same SNs the adapter (and the official SDK) compute.
    const merchant = (await findMerchant(w.deps.db, w.deps.masterKey, raw.app_id!))!;
    expect(merchant.certSns).toEqual({ appCertSn: certSn(raw.app_cert!), alipayRootCertSn: rootCertSn(raw.alipay_root_cert!), alipayCertSn: certSn(raw.alipay_public_cert!) });
    expect(merchant.appGatewayUrl).toBe(`${w.base}/notify/alipay/fundapp`);
    const sdk = new AlipaySdk({ appId: raw.app_id!, privateKey: raw.private_key!, appCertContent: raw.app_cert!, alipayPublicCertContent: raw.alipay_public_cert!, alipayRootCertContent: raw.alipay_root_cert! });
    expect([sdk.config.appCertSn, sdk.config.alipayRootCertSn, sdk.config.alipayCertSn]).toEqual([cred.certMode!.appCertSn, cred.certMode!.alipayRootCertSn, cred.certMode!.alipayCertSn]);
  });

  it('without a gateway registration no app gateway URL is stored', async () => {
    const plain = (await (await alipaySandbox.draftMerchant(w.deps)).register(w.deps.db)) as Record<string, string>;
    expect((await findMerchant(w.deps.db, w.deps.masterKey, plain.app_id!))!.appGatewayUrl).toBeUndefined();
    // And its transfers send no message.
    const biz = transferBiz();
    expect(await call(TRANSFER, biz, alipay.parseCredentials(plain))).toMatchObject({ code: '10000', status: 'SUCCESS' });
    await new Promise((r) => setTimeout(r, 150));
    expect(messagesFor(biz.out_biz_no as string)).toEqual([]);
  });
});

describe('certificate SNs at gateway.do', () => {
  it('a cert-mode answer carries alipay_cert_sn beside sign, verifiable with the Alipay certificate', async () => {
    const text = await postSigned(QUERY, { order_id: '20990101000000000000000000000000' }, sns());
    expect(text).toMatch(/^\{"alipay_fund_trans_common_query_response":\{.*\},"alipay_cert_sn":"[0-9a-f]{32}","sign":"[^"]+"\}$/);
    const signed = readSignedResponse(text, [keyOf(QUERY)]);
    expect(signed.certSn).toBe(cred.certMode!.alipayCertSn);
    expect(verifyResponse(signed, certPublicKey(raw.alipay_public_cert!))).toBe(true);
    expect(JSON.parse(signed.body)).toMatchObject({ code: '40004', sub_code: 'ORDER_NOT_EXIST' });
  });

  it('a fund method without the SN params is refused (certificate mode is required)', async () => {
    const text = await postSigned(TRANSFER, transferBiz(), {});
    expect(answerOf(text, TRANSFER)).toMatchObject({ code: '40002', sub_code: 'isv.missing-app-cert-sn' });
    expect(JSON.parse(text).alipay_cert_sn).toBeUndefined();
    expect(answerOf(await postSigned(TRANSFER, transferBiz(), { app_cert_sn: sns().app_cert_sn }), TRANSFER)).toMatchObject({ code: '40002', sub_code: 'isv.missing-alipay-root-cert-sn' });
    expect(answerOf(await postSigned(QUERY, { order_id: '1' }, { alipay_root_cert_sn: sns().alipay_root_cert_sn }), QUERY)).toMatchObject({ code: '40002', sub_code: 'isv.missing-app-cert-sn' });
  });

  it('a wrong app_cert_sn or alipay_root_cert_sn is refused, naming the SN; the adapter reads the refusal', async () => {
    const badApp = answerOf(await postSigned(TRANSFER, transferBiz(), { ...sns(), app_cert_sn: 'f'.repeat(32) }), TRANSFER);
    expect(badApp).toMatchObject({ code: '40002', msg: 'Invalid Arguments', sub_code: 'isv.app-cert-not-exist' });
    expect(badApp.sub_msg).toContain('f'.repeat(32));
    const badRoot = answerOf(await postSigned(TRANSFER, transferBiz(), { ...sns(), alipay_root_cert_sn: '0'.repeat(32) }), TRANSFER);
    expect(badRoot).toMatchObject({ code: '40002', sub_code: 'isv.invalid-alipay-root-cert-sn' });
    expect(badRoot.sub_msg).toContain('0'.repeat(32));
    const wrong = { ...cred, certMode: { ...cred.certMode!, appCertSn: 'f'.repeat(32) } };
    await expect(call(TRANSFER, transferBiz(), wrong)).rejects.toThrow(/isv\.app-cert-not-exist/);
  });

  it('trade methods still answer requests without SNs (no alipay_cert_sn then) and with them', async () => {
    const plain = await postSigned('alipay.trade.query', { out_trade_no: 'nope' }, {});
    expect(JSON.parse(plain).alipay_cert_sn).toBeUndefined();
    expect(answerOf(plain, 'alipay.trade.query')).toMatchObject({ sub_code: 'ACQ.TRADE_NOT_EXIST' });
    const certified = await postSigned('alipay.trade.query', { out_trade_no: 'nope' }, sns());
    expect(JSON.parse(certified).alipay_cert_sn).toBe(cred.certMode!.alipayCertSn);
  });

  it('an app stored before certificate mode keeps working in public-key mode; fund calls need certificates', async () => {
    const keys = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const alipayKeys = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const appId = '2021000000000777';
    const spki = (k: crypto.KeyObject) => k.export({ format: 'pem', type: 'spki' }).toString();
    await insertMerchant(w.deps.db, w.deps.masterKey, appId, {
      app_public_key: spki(keys.publicKey), alipay_private_key: alipayKeys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      alipay_public_key: spki(alipayKeys.publicKey), seller_id: '2088000000000777',
    });
    const old = alipay.parseCredentials({ app_id: appId, private_key: keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), alipay_public_key: spki(alipayKeys.publicKey), gateway: raw.gateway });
    expect(await call('alipay.trade.query', { out_trade_no: 'nope' }, old)).toMatchObject({ code: '40004', sub_code: 'ACQ.TRADE_NOT_EXIST' });
    await expect(call(TRANSFER, transferBiz(), old)).rejects.toThrow(/isv\.missing-app-cert-sn/);
    const pk = keys.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    expect(answerOf(await postSigned(TRANSFER, transferBiz(), sns(), pk, appId), TRANSFER)).toMatchObject({ code: '40002', sub_code: 'isv.app-cert-not-exist' });
  });
});

describe('alipay.fund.trans.uni.transfer', () => {
  it('pays at once; a repeat answers the same transfer; another body under the same out_biz_no is refused', async () => {
    const biz = transferBiz();
    const first = await call(TRANSFER, biz);
    expect(first).toMatchObject({ code: '10000', msg: 'Success', out_biz_no: biz.out_biz_no, status: 'SUCCESS' });
    expect(first.order_id).toMatch(/^\d{32}$/);
    expect(first.pay_fund_order_id).toMatch(/^\d{32}$/);
    expect(first.trans_date).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(await sandboxFundPaidCount(w.deps, raw.app_id!, biz.out_biz_no as string)).toBe(1);
    const again = await call(TRANSFER, biz);
    expect(again).toMatchObject({ code: '10000', order_id: first.order_id, pay_fund_order_id: first.pay_fund_order_id, trans_date: first.trans_date });
    expect(await call(TRANSFER, { ...biz, trans_amount: '12.89' })).toMatchObject({ code: '40004', sub_code: 'PAYMENT_INFO_INCONSISTENCY' });
    expect(await call(TRANSFER, { ...biz, payee_info: { identity: '2088102146225136', identity_type: 'ALIPAY_USER_ID' } })).toMatchObject({ sub_code: 'PAYMENT_INFO_INCONSISTENCY' });
    expect(await sandboxFundPaidCount(w.deps, raw.app_id!, biz.out_biz_no as string)).toBe(1);
  });

  it('concurrent identical requests create one transfer, paid once', async () => {
    const biz = transferBiz();
    const answers = await Promise.all(Array.from({ length: 6 }, () => call(TRANSFER, biz)));
    expect(new Set(answers.map((a) => a.order_id)).size).toBe(1);
    expect(answers.every((a) => a.code === '10000' && a.status === 'SUCCESS')).toBe(true);
    expect(await sandboxFundPaidCount(w.deps, raw.app_id!, biz.out_biz_no as string)).toBe(1);
  });

  it.each([
    ['403.01', {}, 'PAYER_BALANCE_NOT_ENOUGH'],
    ['403.02', {}, 'EXCEED_LIMIT_DM_AMOUNT'],
    ['1.00', { payee_info: { identity: '2088999999999999', identity_type: 'ALIPAY_USER_ID' } }, 'PAYEE_NOT_EXIST'],
    ['1.00', { payee_info: { identity: '2088102146225135', identity_type: 'ALIPAY_USER_ID', name: '不匹配' } }, 'PAYEE_USER_INFO_ERROR'],
  ] as const)('scripted %s %j: 40004 %s, nothing created', async (amount, over, subCode) => {
    const biz = transferBiz({ trans_amount: amount, ...over });
    expect(await call(TRANSFER, biz)).toMatchObject({ code: '40004', msg: 'Business Failed', sub_code: subCode });
    expect(await sandboxFundPaidCount(w.deps, raw.app_id!, biz.out_biz_no as string)).toBe(0);
    expect(await call(QUERY, { out_biz_no: biz.out_biz_no, product_code: 'TRANS_ACCOUNT_NO_PWD', biz_scene: 'DIRECT_TRANSFER' })).toMatchObject({ code: '40004', sub_code: 'ORDER_NOT_EXIST' });
  });

  it('scripted 500.01: paid, but the answer is 20000 (unknown); a query and a resubmission find the transfer', async () => {
    const biz = transferBiz({ trans_amount: '500.01' });
    const text = await postSigned(TRANSFER, biz, sns());
    expect(answerOf(text, TRANSFER)).toMatchObject({ code: '20000', sub_code: 'isp.unknow-error' });
    await expect(call(TRANSFER, { ...biz, out_biz_no: outBizNo() })).rejects.toBeInstanceOf(ChannelUnavailable);
    const q = await call(QUERY, { out_biz_no: biz.out_biz_no, product_code: 'TRANS_ACCOUNT_NO_PWD', biz_scene: 'DIRECT_TRANSFER' });
    expect(q).toMatchObject({ code: '10000', status: 'SUCCESS', trans_amount: '500.01' });
    expect(await call(TRANSFER, biz)).toMatchObject({ code: '10000', status: 'SUCCESS', order_id: q.order_id });
    expect(await sandboxFundPaidCount(w.deps, raw.app_id!, biz.out_biz_no as string)).toBe(1);
  });

  it('refuses amounts out of bounds, a LOGON_ID without name, a bad red packet; takes a 0.01 red packet and a named LOGON_ID', async () => {
    expect(await call(TRANSFER, transferBiz({ trans_amount: '0.09' }))).toMatchObject({ code: '40004', sub_code: 'EXCEED_LIMIT_SM_MIN_AMOUNT' });
    expect(await call(TRANSFER, transferBiz({ trans_amount: '0.10' }))).toMatchObject({ code: '10000', status: 'SUCCESS' });
    expect(await call(TRANSFER, transferBiz({ trans_amount: '100000000.01' }))).toMatchObject({ code: '40004', sub_code: 'INVALID_PARAMETER' });
    expect(await call(TRANSFER, transferBiz({ trans_amount: '1.001' }))).toMatchObject({ sub_code: 'INVALID_PARAMETER' });
    expect(await call(TRANSFER, transferBiz({ payee_info: { identity: 'payee@example.com', identity_type: 'ALIPAY_LOGON_ID' } }))).toMatchObject({ sub_code: 'INVALID_PARAMETER' });
    expect(await call(TRANSFER, transferBiz({ payee_info: { identity: '13800138000', identity_type: 'ALIPAY_LOGON_ID', name: '张三' } }))).toMatchObject({ code: '10000' });
    expect(await call(TRANSFER, transferBiz({ payee_info: { identity: '2088102146225135', identity_type: 'BANKCARD_ACCOUNT' } }))).toMatchObject({ sub_code: 'INVALID_PARAMETER' });
    expect(await call(TRANSFER, transferBiz({ order_title: undefined }))).toMatchObject({ sub_code: 'INVALID_PARAMETER' });
    expect(await call(TRANSFER, transferBiz({ biz_scene: 'PERSONAL_PAY' }))).toMatchObject({ sub_code: 'INVALID_PARAMETER' });
    const packet = { product_code: 'STD_RED_PACKET', trans_amount: '0.01' };
    expect(await call(TRANSFER, transferBiz(packet))).toMatchObject({ sub_code: 'INVALID_PARAMETER' });
    expect(await call(TRANSFER, transferBiz({ ...packet, business_params: '{"sub_biz_scene":"OTHER"}' }))).toMatchObject({ sub_code: 'INVALID_PARAMETER' });
    expect(await call(TRANSFER, transferBiz({ ...packet, business_params: '{"sub_biz_scene":"REDPACKET"}' }))).toMatchObject({ code: '10000', status: 'SUCCESS' });
  });
});

describe('alipay.fund.trans.common.query', () => {
  it('finds a transfer by pay_fund_order_id, order_id, or out_biz_no with product_code and biz_scene', async () => {
    const biz = transferBiz({ trans_amount: '66.60' });
    const t = await call(TRANSFER, biz);
    const expected = { code: '10000', order_id: t.order_id, pay_fund_order_id: t.pay_fund_order_id, out_biz_no: biz.out_biz_no, trans_amount: '66.60', status: 'SUCCESS', pay_date: t.trans_date };
    expect(await call(QUERY, { pay_fund_order_id: t.pay_fund_order_id })).toMatchObject(expected);
    expect(await call(QUERY, { order_id: t.order_id })).toMatchObject(expected);
    expect(await call(QUERY, { out_biz_no: biz.out_biz_no, product_code: 'TRANS_ACCOUNT_NO_PWD', biz_scene: 'DIRECT_TRANSFER' })).toMatchObject(expected);
    // pay_fund_order_id wins over the others.
    expect(await call(QUERY, { pay_fund_order_id: t.pay_fund_order_id, order_id: 'x', out_biz_no: 'y' })).toMatchObject(expected);
    expect(await call(QUERY, { out_biz_no: biz.out_biz_no })).toMatchObject({ code: '40004', sub_code: 'INVALID_PARAMETER' });
    expect(await call(QUERY, { out_biz_no: biz.out_biz_no, product_code: 'STD_RED_PACKET', biz_scene: 'DIRECT_TRANSFER' })).toMatchObject({ sub_code: 'ORDER_NOT_EXIST' });
    expect(await call(QUERY, { order_id: '20990101000000000000000000000000' })).toMatchObject({ code: '40004', sub_code: 'ORDER_NOT_EXIST' });
    expect(await call(QUERY, {})).toMatchObject({ sub_code: 'INVALID_PARAMETER' });
  });
});

describe('alipay.fund.trans.order.changed', () => {
  it('arrives at the app gateway URL, signed with the Alipay key, once answered success', async () => {
    const biz = transferBiz({ trans_amount: '8.80' });
    const t = await call(TRANSFER, biz);
    const m = await waitFor(() => messagesFor(biz.out_biz_no as string)[0]);
    expect(m).toMatchObject({ msg_method: 'alipay.fund.trans.order.changed', app_id: raw.app_id, version: '1.1', charset: 'utf-8', sign_type: 'RSA2' });
    expect(m.notify_id).toMatch(/^[0-9a-f]{36}$/);
    expect(Math.abs(Number(m.utc_timestamp) - Date.now())).toBeLessThan(60_000);
    expect(verifyNotify(m, crypto.createPublicKey(raw.alipay_public_key!))).toBe(true);
    expect(verifyNotify(m, certPublicKey(raw.alipay_public_cert!))).toBe(true);
    expect(verifyNotify({ ...m, biz_content: m.biz_content!.replace('8.80', '88.00') }, crypto.createPublicKey(raw.alipay_public_key!))).toBe(false);
    expect(JSON.parse(m.biz_content!)).toEqual({
      out_biz_no: biz.out_biz_no, order_id: t.order_id, pay_fund_order_id: t.pay_fund_order_id, product_code: 'TRANS_ACCOUNT_NO_PWD', biz_scene: 'DIRECT_TRANSFER',
      origin_interface: 'alipay.fund.trans.uni.transfer', status: 'SUCCESS', action_type: 'FINISH', trans_amount: '8.80', pay_date: t.trans_date,
    });
    // A repeat is not a new status change: no second message.
    await call(TRANSFER, biz);
    await new Promise((r) => setTimeout(r, 150));
    expect(messagesFor(biz.out_biz_no as string)).toHaveLength(1);
  });

  it('is retried on the notify schedule when not answered success', async () => {
    const other = (await (await alipaySandbox.draftMerchant(w.deps)).register(w.deps.db, { appId: 'refusing', notifyUrl: `${w.base}/notify/alipay/refusing` })) as Record<string, string>;
    let got = 0;
    w.app.post('/notify/alipay/refusing', (_req, res) => {
      got++;
      res.status(500).send('fail');
    });
    const before = scheduledNotifyCount();
    await call(TRANSFER, transferBiz(), alipay.parseCredentials(other));
    await waitFor(() => (got > 0 && scheduledNotifyCount() > before ? true : undefined));
  });

  it('is not sent for a title with [drop-message], nor while dropFundMessages holds, yet a query settles the transfer', async () => {
    const scripted = transferBiz({ order_title: '佣金 [drop-message]' });
    await call(TRANSFER, scripted);
    const switched = transferBiz();
    dropFundMessages(switched.out_biz_no as string);
    try {
      await call(TRANSFER, switched);
      const all = transferBiz();
      dropFundMessages();
      await call(TRANSFER, all);
      await new Promise((r) => setTimeout(r, 200));
      for (const b of [scripted, switched, all]) {
        expect(messagesFor(b.out_biz_no as string)).toEqual([]);
        expect(await call(QUERY, { out_biz_no: b.out_biz_no, product_code: 'TRANS_ACCOUNT_NO_PWD', biz_scene: 'DIRECT_TRANSFER' })).toMatchObject({ status: 'SUCCESS' });
      }
    } finally {
      resumeFundMessages();
    }
    const after = transferBiz();
    await call(TRANSFER, after);
    await waitFor(() => messagesFor(after.out_biz_no as string)[0]);
  });
});
