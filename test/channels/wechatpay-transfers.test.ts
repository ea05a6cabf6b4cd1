/**
 * WeChat Pay 商家转账 (transfer-bills, user-confirmation mode) through the adapter and the simulator
 * over real HTTP: create → WAIT_USER_CONFIRM with package_info, the recipient's confirm / decline /
 * lapse, merchant cancel, queries, out_bill_no idempotency, user_name sealed with RSA-OAEP, the
 * scripted SYSTEM_ERROR and NOT_ENOUGH, forged notifies, and validate().
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wechatpay } from '../../server/channels/wechatpay/index.ts';
import { callApi } from '../../server/channels/wechatpay/client.ts';
import { signedHeaders } from '../../server/channels/wechatpay/sign.ts';
import { decryptSensitive, transferRequest, wechatpayPayouts, TRANSFER_BILLS_PATH } from '../../server/channels/wechatpay/transfers.ts';
import { payoutChannelFor } from '../../server/channels/registry.ts';
import type { PayoutRequest, TransferNotification } from '../../server/channels/payouts.ts';
import { sandboxTransferPaidCount, wechatpaySandbox } from '../../server/sandbox/wechatpay/index.ts';
import { findMerchant } from '../../server/sandbox/wechatpay/store.ts';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, SignatureError } from '../../server/errors.ts';
import { startWechatpayHarness, waitFor, type Merchant, type WechatpayHarness } from './wechatpay-harness.ts';

let h: WechatpayHarness;
let seq = 0;

beforeAll(async () => {
  h = await startWechatpayHarness();
});
afterAll(() => h.stop());

function transfer(over: Partial<PayoutRequest> = {}, m: Merchant = h): PayoutRequest {
  return {
    transferNo: `tr${Date.now()}x${++seq}`,
    amount: 1288,
    currency: 'CNY',
    recipient: { type: 'wechat_openid', account: m.openid },
    description: '邀请好友活动奖励 Invite reward',
    notifyUrl: `${h.base}/notify/wechatpay/${m.raw.mchid}`,
    createdAt: Math.floor(Date.now() / 1000),
    ...over,
  };
}

const transferNotifies = (transferNo: string) =>
  h.notifications.filter((n): n is TransferNotification => n.kind === 'transfer' && n.transferNo === transferNo);
const recipient = (req: PayoutRequest, outcome: 'confirm' | 'decline' | 'expire', m: Merchant = h) =>
  wechatpaySandbox.transferRecipient!(h.deps, { merchantId: m.raw.mchid, transferNo: req.transferNo, outcome });

describe('create and the recipient', () => {
  it('is registered for wechatpay and creates a bill awaiting the recipient, with what wx.requestMerchantTransfer needs', async () => {
    expect(payoutChannelFor('wechatpay')).toBe(wechatpayPayouts);
    const req = transfer();
    const r = await wechatpayPayouts.submit(h.cred, req);
    expect(r.status).toBe('awaiting_recipient');
    expect(r.channelTransferNo).toMatch(/^1330000\d{30}$/);
    expect(r.nextAction?.type).toBe('wechat_transfer_confirm');
    expect(r.nextAction?.wechat_transfer_confirm).toEqual({ mch_id: h.raw.mchid, app_id: h.raw.appid, package_info: expect.stringMatching(/^[A-Za-z0-9+/=]{40,}$/) });
    const q = await wechatpayPayouts.query(h.cred, req);
    expect(q).toMatchObject({ status: 'awaiting_recipient', channelTransferNo: r.channelTransferNo });
    expect(transferNotifies(req.transferNo)).toHaveLength(0);
  });

  it('confirm: SUCCESS, the verified notify is a succeeded TransferNotification, paid exactly once even when resubmitted', async () => {
    const req = transfer({ amount: 2345 });
    const r = await wechatpayPayouts.submit(h.cred, req);
    await recipient(req, 'confirm');
    const [n] = transferNotifies(req.transferNo);
    expect(n).toMatchObject({ kind: 'transfer', status: 'succeeded', transferNo: req.transferNo, channelTransferNo: r.channelTransferNo, merchantId: h.raw.mchid, amount: 2345 });
    expect(n!.notifyId).toMatch(/^[0-9a-f-]{36}$/);
    expect(n!.paidAt).toBeGreaterThan(Date.now() / 1000 - 60);
    const q = await wechatpayPayouts.query(h.cred, req);
    expect(q.status).toBe('succeeded');
    // A resubmission (same number, same body) answers the paid bill; nothing is paid again.
    const again = await wechatpayPayouts.submit(h.cred, req);
    expect(again).toMatchObject({ status: 'succeeded', channelTransferNo: r.channelTransferNo });
    expect(again.nextAction).toBeUndefined();
    expect(await sandboxTransferPaidCount(h.deps, h.raw.mchid, req.transferNo)).toBe(1);
    // The sheet of a paid bill cannot be confirmed again.
    await expect(recipient(req, 'confirm')).rejects.toThrow(/BILL_NOT_CONFIRMABLE/);
    expect(await sandboxTransferPaidCount(h.deps, h.raw.mchid, req.transferNo)).toBe(1);
  });

  it('decline: FAIL, notified as failed with the fail_reason, never paid', async () => {
    const req = transfer();
    await wechatpayPayouts.submit(h.cred, req);
    await recipient(req, 'decline');
    expect(transferNotifies(req.transferNo)).toMatchObject([{ status: 'failed', failureCode: 'OTHER_FAIL_REASON_TYPE' }]);
    expect(await wechatpayPayouts.query(h.cred, req)).toMatchObject({ status: 'failed', failureCode: 'OTHER_FAIL_REASON_TYPE' });
    expect(await sandboxTransferPaidCount(h.deps, h.raw.mchid, req.transferNo)).toBe(0);
  });

  it("the recipient's daily limit: confirmed, FAIL with DAY_RECEIVED_QUOTA_EXCEED (notified), never paid", async () => {
    const req = transfer({ amount: 40302 });
    expect((await wechatpayPayouts.submit(h.cred, req)).status).toBe('awaiting_recipient');
    await recipient(req, 'confirm');
    const [n] = transferNotifies(req.transferNo);
    expect(n).toMatchObject({ status: 'failed', failureCode: 'DAY_RECEIVED_QUOTA_EXCEED' });
    expect(n!.failureMessage).toBe('超过用户日收款额度');
    expect(await sandboxTransferPaidCount(h.deps, h.raw.mchid, req.transferNo)).toBe(0);
  });

  it('expire: the 24 h window lapses, FAIL with OVERDUE_CLOSE (notified)', async () => {
    const req = transfer();
    await wechatpayPayouts.submit(h.cred, req);
    await recipient(req, 'expire');
    const [n] = transferNotifies(req.transferNo);
    expect(n).toMatchObject({ status: 'failed', failureCode: 'OVERDUE_CLOSE' });
    expect(n!.failureMessage).toMatch(/24 hours/);
    const q = await wechatpayPayouts.query(h.cred, req);
    expect(q).toMatchObject({ status: 'failed', failureCode: 'OVERDUE_CLOSE' });
    await expect(recipient(req, 'confirm')).rejects.toThrow(/BILL_NOT_CONFIRMABLE/);
  });

  it('the confirm sheet checks mchId and appId against the bill, and a closed sheet changes nothing', async () => {
    const req = transfer();
    const r = await wechatpayPayouts.submit(h.cred, req);
    const a = r.nextAction!.wechat_transfer_confirm;
    const post = (body: Record<string, string>) => fetch(`${h.base}/sandbox/wechatpay/transfer/confirm`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const wrongApp = await post({ mchId: a.mch_id, appId: h.raw.app_appid, package: a.package_info, action: 'confirm' });
    expect(wrongApp.status).toBe(400);
    expect(((await wrongApp.json()) as { code: string }).code).toBe('PARAM_ERROR');
    const unknown = await post({ mchId: a.mch_id, appId: a.app_id, package: 'bm90IGEgcGFja2FnZQ==', action: 'confirm' });
    expect(unknown.status).toBe(404);
    const closed = await post({ mchId: a.mch_id, appId: a.app_id, package: a.package_info, action: 'cancel' });
    expect(await closed.json()).toEqual({ errMsg: 'requestMerchantTransfer:fail cancel', state: 'WAIT_USER_CONFIRM' });
    const sheet = await fetch(`${h.base}/sandbox/wechatpay/transfer/confirm?${new URLSearchParams({ mchId: a.mch_id, appId: a.app_id, package: a.package_info })}`);
    const html = await sheet.text();
    expect(sheet.status).toBe(200);
    expect(html).toContain('data-sandbox-action="confirm"');
    expect(html).toContain('¥12.88');
    expect((await wechatpayPayouts.query(h.cred, req)).status).toBe('awaiting_recipient');
  });
});

describe('cancel and query', () => {
  it('cancel before confirmation: CANCELING (pending), then CANCELLED notified as canceled; the sheet is gone', async () => {
    const req = transfer();
    await wechatpayPayouts.submit(h.cred, req);
    const c = await wechatpayPayouts.cancel!(h.cred, req);
    expect(c.status).toBe('pending');
    const n = await waitFor(() => transferNotifies(req.transferNo)[0]);
    expect(n).toMatchObject({ status: 'canceled', transferNo: req.transferNo });
    expect((await wechatpayPayouts.query(h.cred, req)).status).toBe('canceled');
    expect((await wechatpayPayouts.cancel!(h.cred, req)).status).toBe('canceled');
    await expect(recipient(req, 'confirm')).rejects.toThrow(/BILL_NOT_CONFIRMABLE/);
    expect(await sandboxTransferPaidCount(h.deps, h.raw.mchid, req.transferNo)).toBe(0);
  });

  it('cancel after the recipient confirmed answers the bill as it is: succeeded', async () => {
    const req = transfer();
    await wechatpayPayouts.submit(h.cred, req);
    await recipient(req, 'confirm');
    expect((await wechatpayPayouts.cancel!(h.cred, req)).status).toBe('succeeded');
  });

  it('query and cancel of a number WeChat never saw: not_found', async () => {
    const req = transfer();
    expect(await wechatpayPayouts.query(h.cred, req)).toEqual({ status: 'not_found' });
    expect(await wechatpayPayouts.cancel!(h.cred, req)).toEqual({ status: 'not_found' });
  });
});

describe('out_bill_no idempotency', () => {
  it('the same number with the same body answers the same bill; with another body it is a ChannelRequestError, not a failure', async () => {
    const req = transfer({ recipient: { type: 'wechat_openid', account: h.openid, name: '张三' } });
    const first = await wechatpayPayouts.submit(h.cred, req);
    const second = await wechatpayPayouts.submit(h.cred, req);
    expect(second).toEqual(first);
    const err = await wechatpayPayouts.submit(h.cred, { ...req, amount: req.amount + 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChannelRequestError);
    expect((err as ChannelRequestError).code).toBe('transfer_no_reused');
    expect((err as Error).message).toContain('单号已存在但信息不一致');
    // Another name under the same number is other terms too (compared decrypted, not by ciphertext).
    const renamed = await wechatpayPayouts.submit(h.cred, { ...req, recipient: { ...req.recipient, name: '李四' } }).catch((e: unknown) => e);
    expect(renamed).toBeInstanceOf(ChannelRequestError);
  });
});

describe('user_name', () => {
  it('goes on the wire RSA-OAEP (SHA-1) under the WeChat Pay public key, named by Wechatpay-Serial', async () => {
    const platform = (await findMerchant(h.deps.db, h.deps.masterKey, h.raw.mchid))!.platformPrivateKey;
    const { body, headers } = transferRequest(h.cred, transfer({ recipient: { type: 'wechat_openid', account: h.openid, name: '王小明' } }));
    expect(headers['Wechatpay-Serial']).toBe(h.raw.wechatpay_public_key_id);
    expect(String(body.user_name)).not.toContain('王小明');
    expect(Buffer.from(String(body.user_name), 'base64')).toHaveLength(256);
    expect(decryptSensitive(String(body.user_name), platform)).toBe('王小明');
    // PKCS#1 v1.5 cannot open it: OAEP it is.
    expect(() => crypto.privateDecrypt({ key: platform, padding: crypto.constants.RSA_PKCS1_PADDING }, Buffer.from(String(body.user_name), 'base64'))).toThrow();
    expect(transferRequest(h.cred, transfer()).body).not.toHaveProperty('user_name');
  });

  it('is required from 2000 yuan: validate() names recipient.name, the simulator refuses a create without it, and takes one with it', async () => {
    const big = transfer({ amount: 200_000 });
    expect(wechatpayPayouts.validate(big)).toMatchObject({ param: 'recipient.name' });
    expect(wechatpayPayouts.validate({ ...big, amount: 199_999 })).toBeNull();
    const { body } = transferRequest(h.cred, big);
    const raw = await callApi(h.cred, 'transfer', 'POST', TRANSFER_BILLS_PATH, body);
    expect(raw).toMatchObject({ ok: false, status: 400, error: { code: 'PARAM_ERROR' } });
    const named = await wechatpayPayouts.submit(h.cred, { ...big, recipient: { ...big.recipient, name: '赵六' } });
    expect(named.status).toBe('awaiting_recipient');
    // The real name is never logged, by the adapter or the simulator.
    expect(h.logLines.join('\n')).not.toContain('赵六');
    expect(await wechatpayPayouts.query(h.cred, big)).toMatchObject({ status: 'awaiting_recipient' });
  });

  it('the simulator decrypts it: one that does not decrypt, or without Wechatpay-Serial, is PARAM_ERROR', async () => {
    const req = transfer({ recipient: { type: 'wechat_openid', account: h.openid, name: '钱七' } });
    const { body, headers } = transferRequest(h.cred, req);
    const garbage = await callApi(h.cred, 'transfer', 'POST', TRANSFER_BILLS_PATH, { ...body, user_name: Buffer.from('钱七').toString('base64') }, headers);
    expect(garbage).toMatchObject({ ok: false, status: 400, error: { code: 'PARAM_ERROR', message: expect.stringContaining('加密后的密文') } });
    const noSerial = await callApi(h.cred, 'transfer', 'POST', TRANSFER_BILLS_PATH, body);
    expect(noSerial).toMatchObject({ ok: false, status: 400, error: { code: 'PARAM_ERROR', message: expect.stringContaining('Wechatpay-Serial') } });
    expect(await wechatpayPayouts.query(h.cred, req)).toEqual({ status: 'not_found' });
  });

  it('a name that is not the recipient\'s (不匹配) fails at confirmation with NAME_NOT_CORRECT', async () => {
    const req = transfer({ recipient: { type: 'wechat_openid', account: h.openid, name: '不匹配' } });
    expect((await wechatpayPayouts.submit(h.cred, req)).status).toBe('awaiting_recipient');
    await recipient(req, 'confirm');
    expect(transferNotifies(req.transferNo)).toMatchObject([{ status: 'failed', failureCode: 'NAME_NOT_CORRECT' }]);
    expect(await sandboxTransferPaidCount(h.deps, h.raw.mchid, req.transferNo)).toBe(0);
  });

  it('with platform certificates the certificate serial is named, and the scene can be 1005 (佣金报酬)', async () => {
    const m = await h.provision({ verification: 'platform_certificate' });
    const cred = wechatpay.parseCredentials({ ...m.raw, transfer_scene_id: '1005' });
    const req = transfer({ recipient: { type: 'wechat_openid', account: m.openid, name: '孙八' } }, m);
    const { body, headers } = transferRequest(cred, req);
    expect(headers['Wechatpay-Serial']).toBe(m.raw.platform_certificates[0].serial_no);
    expect(body.transfer_scene_report_infos).toEqual([{ info_type: '岗位类型', info_content: req.description }, { info_type: '报酬说明', info_content: req.description }]);
    expect((await wechatpayPayouts.submit(cred, req)).status).toBe('awaiting_recipient');
    expect(() => wechatpay.parseCredentials({ ...m.raw, transfer_scene_id: '1001' })).toThrow(ChannelConfigError);
  });
});

describe('faults and refusals', () => {
  it('SYSTEM_ERROR is ChannelUnavailable, yet the bill exists: query finds it and a resubmission answers it', async () => {
    const req = transfer({ amount: 50001 });
    await expect(wechatpayPayouts.submit(h.cred, req)).rejects.toBeInstanceOf(ChannelUnavailable);
    const q = await wechatpayPayouts.query(h.cred, req);
    expect(q.status).toBe('awaiting_recipient');
    expect(q.channelTransferNo).toMatch(/^1330000/);
    const again = await wechatpayPayouts.submit(h.cred, req);
    expect(again).toMatchObject({ status: 'awaiting_recipient', channelTransferNo: q.channelTransferNo });
    expect(again.nextAction?.wechat_transfer_confirm.package_info).toBeTruthy();
  });

  it('NOT_ENOUGH is a definite refusal: failed with the code, and no bill exists', async () => {
    const req = transfer({ amount: 40301 });
    const r = await wechatpayPayouts.submit(h.cred, req);
    expect(r).toMatchObject({ status: 'failed', failureCode: 'NOT_ENOUGH' });
    expect(r.failureMessage).toContain('资金不足');
    expect(await wechatpayPayouts.query(h.cred, req)).toEqual({ status: 'not_found' });
  });

  it('a refused parameter (remark over 32 characters, sent raw) is a PARAM_ERROR answer; the adapter itself cuts to 32', async () => {
    const long = '很长的备注'.repeat(8);
    const req = transfer({ description: long });
    const { body } = transferRequest(h.cred, req);
    expect([...String(body.transfer_remark)]).toHaveLength(32);
    const raw = await callApi(h.cred, 'transfer', 'POST', TRANSFER_BILLS_PATH, { ...body, transfer_remark: long });
    expect(raw).toMatchObject({ ok: false, error: { code: 'PARAM_ERROR' } });
    expect((await wechatpayPayouts.submit(h.cred, req)).status).toBe('awaiting_recipient');
  });

  it('an appid not bound to the merchant is refused as failed (nothing created)', async () => {
    const other = wechatpay.parseCredentials({ ...h.raw, appid: 'wx0123456789abcdef' });
    const req = transfer();
    expect(await wechatpayPayouts.submit(other, req)).toMatchObject({ status: 'failed', failureCode: 'APPID_MCHID_NOT_MATCH' });
    expect(await wechatpayPayouts.query(h.cred, req)).toEqual({ status: 'not_found' });
  });
});

describe('notifies', () => {
  async function finishedNotify() {
    const req = transfer();
    await wechatpayPayouts.submit(h.cred, req);
    await recipient(req, 'confirm');
    const c = h.captured.filter((x) => x.body.toString().includes('MCHTRANSFER.BILL.FINISHED')).at(-1)!;
    return { req, body: c.body.toString(), headers: c.headers };
  }

  it('a forged notify (body changed, headers kept) is a SignatureError, and the notify route refuses it', async () => {
    const { body, headers } = await finishedNotify();
    const forged = body.replace('"summary":"', '"summary":"x');
    await expect(wechatpay.parseNotification(h.cred, { headers, contentType: 'application/json', body: Buffer.from(forged) })).rejects.toBeInstanceOf(SignatureError);
    const refusedBefore = h.refusedNotifies.length;
    const signed = Object.fromEntries(Object.entries(headers).filter(([k]) => k.startsWith('wechatpay-')));
    const res = await fetch(`${h.base}/notify/wechatpay/${h.raw.mchid}`, { method: 'POST', headers: { ...signed, 'content-type': 'application/json' }, body: forged });
    expect(res.status).toBe(500);
    expect(h.refusedNotifies.length).toBe(refusedBefore + 1);
  });

  it('a correctly signed notify whose resource was sealed with another APIv3 key does not decrypt: SignatureError', async () => {
    const { body } = await finishedNotify();
    const envelope = JSON.parse(body);
    const otherKey = crypto.randomBytes(32);
    const cipher = crypto.createCipheriv('aes-256-gcm', otherKey, Buffer.from(envelope.resource.nonce));
    cipher.setAAD(Buffer.from('mch_payment'));
    const ct = Buffer.concat([cipher.update(JSON.stringify({ out_bill_no: 'x', state: 'SUCCESS', transfer_amount: 1 })), cipher.final(), cipher.getAuthTag()]);
    envelope.resource.ciphertext = ct.toString('base64');
    const text = JSON.stringify(envelope);
    const platform = (await findMerchant(h.deps.db, h.deps.masterKey, h.raw.mchid))!.platformPrivateKey;
    const headers = Object.fromEntries(Object.entries(signedHeaders(text, platform, h.raw.wechatpay_public_key_id)).map(([k, v]) => [k.toLowerCase(), v]));
    await expect(wechatpay.parseNotification(h.cred, { headers, contentType: 'application/json', body: Buffer.from(text) })).rejects.toBeInstanceOf(SignatureError);
  });

  it('the genuine notify decrypts to the bill (mch_payment resource)', async () => {
    const { req, body, headers } = await finishedNotify();
    expect(JSON.parse(body).resource).toMatchObject({ original_type: 'mch_payment', associated_data: 'mch_payment', algorithm: 'AEAD_AES_256_GCM' });
    const n = await wechatpay.parseNotification(h.cred, { headers, contentType: 'application/json', body: Buffer.from(body) });
    expect(n).toMatchObject({ kind: 'transfer', transferNo: req.transferNo, status: 'succeeded', amount: req.amount, merchantId: h.raw.mchid });
  });
});

describe('validate()', () => {
  const base = () => ({ amount: 1000, currency: 'CNY', recipient: { type: 'wechat_openid' as const, account: h.openid }, description: '奖励' });
  it('accepts a good request and names the parameter of each bad one', () => {
    expect(wechatpayPayouts.validate(base())).toBeNull();
    expect(wechatpayPayouts.validate({ ...base(), currency: 'USD' })?.param).toBe('currency');
    expect(wechatpayPayouts.validate({ ...base(), amount: 9 })?.param).toBe('amount');
    expect(wechatpayPayouts.validate({ ...base(), amount: 10 })).toBeNull();
    expect(wechatpayPayouts.validate({ ...base(), amount: 10.5 })?.param).toBe('amount');
    expect(wechatpayPayouts.validate({ ...base(), recipient: { type: 'alipay_user_id', account: '2088102146225135' } })?.param).toBe('recipient.type');
    expect(wechatpayPayouts.validate({ ...base(), recipient: { type: 'wechat_openid', account: 'o-short' } })?.param).toBe('recipient.account');
    expect(wechatpayPayouts.validate({ ...base(), recipient: { type: 'wechat_openid', account: `${h.openid.slice(0, 27)}!` } })?.param).toBe('recipient.account');
    expect(wechatpayPayouts.validate({ ...base(), recipient: { ...base().recipient, name: ' ' } })?.param).toBe('recipient.name');
    expect(wechatpayPayouts.validate({ ...base(), recipient: { ...base().recipient, name: '名'.repeat(51) } })?.param).toBe('recipient.name');
    expect(wechatpayPayouts.validate({ ...base(), amount: 300_000 })?.param).toBe('recipient.name');
    expect(wechatpayPayouts.validate({ ...base(), amount: 300_000, recipient: { ...base().recipient, name: '周九' } })).toBeNull();
    expect(wechatpayPayouts.validate({ ...base(), description: '   ' })?.param).toBe('description');
  });

  it('submit() refuses what validate() refuses before anything is sent', async () => {
    const req = transfer({ amount: 5 });
    await expect(wechatpayPayouts.submit(h.cred, req)).rejects.toBeInstanceOf(ChannelRequestError);
    expect(await wechatpayPayouts.query(h.cred, req)).toEqual({ status: 'not_found' });
  });
});
