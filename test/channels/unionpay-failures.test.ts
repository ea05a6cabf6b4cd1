/**
 * The UnionPay adapter's faults: answers and notifies that must not be believed (bad signature,
 * another CN, an expired or foreign certificate), UnionPay's fault codes, an unreachable or
 * broken gateway, malformed notifies, and configs that name the broken field.
 */
import crypto, { X509Certificate } from 'node:crypto';
import http from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, MalformedMessageError, SignatureError } from '../../server/errors.ts';
import { createUnionpayChannel } from '../../server/channels/unionpay/index.ts';
import { rawResponseOf, signAsUnionpay } from '../../server/channels/unionpay/sign.ts';
import { ensureCa, MIDDLE_DN, type SandboxCa } from '../../server/sandbox/unionpay/store.ts';
import { issueCertificate, randomSerial, type DistinguishedName } from '../../server/sandbox/unionpay/x509.ts';
import { startUnionpayHarness, type UnionpayHarness } from './unionpay-harness.ts';

let h: UnionpayHarness;
let ca: SandboxCa;
/** A fake gateway whose next answer the test writes. */
let fake: { server: http.Server; base: string; answer: (fields: Record<string, string>) => { status: number; body: string } };

beforeAll(async () => {
  h = await startUnionpayHarness();
  ca = await ensureCa(h.deps.db, h.deps.masterKey);
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.post('/gateway/api/:api', (req, res) => {
    const a = fake.answer(req.body as Record<string, string>);
    res.status(a.status).type('text/plain').send(a.body);
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake = { server, base: `http://127.0.0.1:${(server.address() as { port: number }).port}`, answer: () => ({ status: 500, body: '' }) };
});
afterAll(async () => {
  await new Promise((resolve) => fake.server.close(resolve));
  await h.stop();
});

const now = () => Math.floor(Date.now() / 1000);
const keys = () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const UNIONPAY_CN = '041@Z2026-01-01@中国银联股份有限公司@00000001';

/** A leaf issued by `issuerKey` under the middle's name. */
function leaf(issuerKey: crypto.KeyObject, opts: { cn?: string; notAfter?: number; notBefore?: number } = {}) {
  const k = keys();
  const subject: DistinguishedName = [['C', 'CN'], ['CN', opts.cn ?? UNIONPAY_CN]];
  const pem = issueCertificate({ serial: randomSerial(), subject, issuer: MIDDLE_DN, notBefore: opts.notBefore ?? now() - 60, notAfter: opts.notAfter ?? now() + 86400, publicKey: k.publicKey, issuerKey, ca: false }, '\r\n');
  return { pem, key: k.privateKey };
}

/** A genuine-looking query answer for `req` (orderId, txnTime echoed), signed by `signer`. */
function answerFor(req: Record<string, string>, signer: { pem: string; key: crypto.KeyObject }, extra: Record<string, string> = {}) {
  return rawResponseOf(signAsUnionpay({
    version: '5.1.0', encoding: 'UTF-8', txnType: '00', txnSubType: '00', bizType: '000000', accessType: '0', merId: req.merId!, orderId: req.orderId!, txnTime: req.txnTime!,
    txnAmt: '1234', queryId: '202601010000000000001', respCode: '00', respMsg: '成功[0000000]', origRespCode: '00', origRespMsg: '成功[0000000]', ...extra,
  }, signer.key, signer.pem));
}

const fakeCred = () => ({ ...h.cred, gateway: fake.base });
const ctx = { channel: 'unionpay_pc' as const, reference: '20260101120000', channelTradeNo: null, amount: 1234, currency: 'CNY', createdAt: now(), expiresAt: now() + 900 };
const query = (adapter = h.adapter) => adapter.queryPayment(fakeCred(), 'cs0000000000000000000000000000001', ctx);

describe('sync answers that must not be believed', () => {
  it('the genuine shape is believed (the fake gateway works)', async () => {
    fake.answer = (req) => ({ status: 200, body: answerFor(req, { pem: ca.leafCert, key: ca.leafKey }) });
    expect(await query()).toMatchObject({ status: 'succeeded', amount: 1234 });
  });

  it('a signature by another key, with the genuine certificate', async () => {
    fake.answer = (req) => ({ status: 200, body: answerFor(req, { pem: ca.leafCert, key: keys().privateKey }) });
    await expect(query()).rejects.toThrow(SignatureError);
  });

  it('a leaf of the right chain with another CN', async () => {
    fake.answer = (req) => ({ status: 200, body: answerFor(req, leaf(ca.middleKey, { cn: '041@Z2017-11-1@00040000:SIGN@00000001' })) });
    await expect(query()).rejects.toThrow(/CN/);
  });

  it('an expired leaf, and the genuine leaf once the (injected) clock is past its expiry', async () => {
    fake.answer = (req) => ({ status: 200, body: answerFor(req, leaf(ca.middleKey, { notBefore: now() - 7200, notAfter: now() - 3600 })) });
    await expect(query()).rejects.toThrow(/not valid now/);
    const later = createUnionpayChannel({ now: () => Date.now() + 30 * 365 * 86400_000 });
    fake.answer = (req) => ({ status: 200, body: answerFor(req, { pem: ca.leafCert, key: ca.leafKey }) });
    await expect(query(later)).rejects.toThrow(/not valid now/);
  });

  it('a chain to another CA (same names, other keys)', async () => {
    const middle = keys();
    fake.answer = (req) => ({ status: 200, body: answerFor(req, leaf(middle.privateKey)) });
    await expect(query()).rejects.toThrow(/middle_cert/);
  });

  it('an unsigned success', async () => {
    fake.answer = (req) => ({ status: 200, body: rawResponseOf({ merId: req.merId!, orderId: req.orderId!, respCode: '00', origRespCode: '00' }) });
    await expect(query()).rejects.toThrow(SignatureError);
  });

  it('a genuine answer about another order', async () => {
    fake.answer = (req) => ({ status: 200, body: answerFor({ ...req, orderId: 'cs9999999999' }, { pem: ca.leafCert, key: ca.leafKey }) });
    await expect(query()).rejects.toThrow(MalformedMessageError);
  });
});

describe('faults', () => {
  it('respCode 11 (our signature refused), signed or not: ChannelConfigError', async () => {
    fake.answer = () => ({ status: 200, body: 'respCode=11&respMsg=验证签名失败[9100004]' });
    await expect(query()).rejects.toThrow(ChannelConfigError);
    fake.answer = (req) => ({ status: 200, body: answerFor(req, { pem: ca.leafCert, key: ca.leafKey }, { respCode: '11', respMsg: '验证签名失败[9100004]' }) });
    await expect(query()).rejects.toThrow(ChannelConfigError);
  });

  it('respCode 10 (format): ChannelRequestError; refund 10 too', async () => {
    fake.answer = () => ({ status: 200, body: 'respCode=10&respMsg=报文格式错误[9100003]' });
    await expect(query()).rejects.toThrow(ChannelRequestError);
  });

  it('HTTP 500, an unreadable answer, and an unreachable gateway: ChannelUnavailable', async () => {
    fake.answer = () => ({ status: 500, body: 'oops' });
    await expect(query()).rejects.toThrow(ChannelUnavailable);
    fake.answer = () => ({ status: 200, body: 'respCode={00&x' });
    await expect(query()).rejects.toThrow(ChannelUnavailable);
    fake.answer = () => ({ status: 200, body: '<html>maintenance</html>' });
    await expect(query()).rejects.toThrow(ChannelUnavailable);
    await expect(h.adapter.queryPayment({ ...h.cred, gateway: 'http://127.0.0.1:1' }, 'cs0000000000000000000000000000001', ctx)).rejects.toThrow(ChannelUnavailable);
  });

  it('a query without the stored txnTime is refused before any call', async () => {
    await expect(h.adapter.queryPayment(h.cred, 'cs0000000000000000000000000000001', { ...ctx, reference: null })).rejects.toThrow(ChannelRequestError);
  });

  it('a refund without the payment queryId is refused before any call', async () => {
    await expect(h.adapter.refund(h.cred, { orderNo: 'cs00000000', refundNo: 're_abcdefgh12345678', amount: 1, totalAmount: 1, currency: 'CNY', notifyUrl: 'http://x', createdAt: now(), attempt: ctx })).rejects.toThrow(/origQryId/);
  });
});

describe('notifies', () => {
  const form = 'application/x-www-form-urlencoded';
  const pay = (): Record<string, string> => ({ version: '5.1.0', encoding: 'UTF-8', txnType: '01', txnSubType: '01', bizType: '000201', merId: h.cred.merId, orderId: 'cs12345678', txnTime: '20260101120000', txnAmt: '1234', currencyCode: '156', queryId: '202601011200000000001', respCode: '00', respMsg: '成功[0000000]' });
  const parse = (fields: Record<string, string>, contentType = form) =>
    h.adapter.parseNotification(h.cred, { headers: {}, contentType, body: Buffer.from(new URLSearchParams(fields).toString()) });

  it('a genuine one parses', async () => {
    expect(await parse(signAsUnionpay(pay(), ca.leafKey, ca.leafCert))).toMatchObject({ kind: 'payment', status: 'succeeded', amount: 1234 });
  });
  it('forged, LF line endings, wrong CN: SignatureError', async () => {
    await expect(parse(signAsUnionpay(pay(), keys().privateKey, ca.leafCert))).rejects.toThrow(SignatureError);
    const g = signAsUnionpay(pay(), ca.leafKey, ca.leafCert);
    await expect(parse({ ...g, signPubKeyCert: g.signPubKeyCert!.replace(/\r\n/g, '\n') })).rejects.toThrow(SignatureError);
    const other = leaf(ca.middleKey, { cn: '041@Z2026@Another Co@1' });
    await expect(parse(signAsUnionpay(pay(), other.key, other.pem))).rejects.toThrow(/CN/);
  });
  it('JSON, repeated fields, missing fields: MalformedMessageError', async () => {
    const g = signAsUnionpay(pay(), ca.leafKey, ca.leafCert);
    await expect(parse(g, 'application/json')).rejects.toThrow(MalformedMessageError);
    await expect(h.adapter.parseNotification(h.cred, { headers: {}, contentType: form, body: Buffer.from(`${new URLSearchParams(g)}&respCode=00`) })).rejects.toThrow(MalformedMessageError);
    const { queryId: _q, ...noQueryId } = pay();
    await expect(parse(signAsUnionpay(noQueryId, ca.leafKey, ca.leafCert))).rejects.toThrow(MalformedMessageError);
  });
  it('acknowledge: 200 ok, or a non-200 that makes UnionPay resend', () => {
    expect(h.adapter.acknowledge(true)).toMatchObject({ status: 200, body: 'ok' });
    expect(h.adapter.acknowledge(false).status).toBe(400);
  });
});

describe('parseCredentials names the broken field', () => {
  const good = () => ({ ...h.raw });
  const cases: Array<[string, () => Record<string, string>]> = [
    ['mer_id', () => ({ mer_id: '12345' })],
    ['sign_cert', () => ({ sign_cert: '-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----' })],
    ['sign_key', () => ({ sign_key: '-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----' })],
    ['sign_key', () => ({ sign_key: keys().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() })], // not the cert's key
    ['root_cert', () => ({ root_cert: 'not a pem' })],
    ['middle_cert', () => ({ middle_cert: '-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----' })],
    ['middle_cert', () => ({ middle_cert: h.raw.sign_cert! })], // not issued by root_cert
    ['gateway', () => ({ gateway: 'ftp://x' })],
  ];
  it.each(cases)('%s', (field, patch) => {
    const raw = { ...good(), ...patch() };
    expect(() => h.adapter.parseCredentials(raw)).toThrow(ChannelConfigError);
    expect(() => h.adapter.parseCredentials(raw)).toThrow(new RegExp(field));
  });
  it('a good config parses; no key material when logged', () => {
    const cred = h.adapter.parseCredentials(good());
    expect(JSON.stringify(cred)).not.toContain('PRIVATE KEY');
    expect(cred.signCert).toBeInstanceOf(X509Certificate);
  });
});
