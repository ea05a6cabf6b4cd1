/**
 * Alipay money out through the adapter and the simulator over real HTTP, in certificate mode:
 * uni.transfer paid at once (TRANS_ACCOUNT_NO_PWD) and B2C red packets (STD_RED_PACKET), the
 * common.query, the alipay.fund.trans.order.changed message on the app's gateway URL, the
 * scripted refusals and the unknown answer resolved by a query, out_biz_no idempotency, forged
 * messages, public-key-mode credentials refused, and validate().
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alipay, type AlipayCredentials } from '../../server/channels/alipay/index.ts';
import { alipayPayouts, alipayRedPackets, redPacketBizContent, transferBizContent } from '../../server/channels/alipay/payouts.ts';
import { payoutChannelFor, redPacketChannelFor } from '../../server/channels/registry.ts';
import type { PayoutRequest, RedPacketNotification, RedPacketRequest, TransferNotification } from '../../server/channels/payouts.ts';
import { alipaySandbox } from '../../server/sandbox/alipay/index.ts';
import { sandboxFundPaidCount } from '../../server/sandbox/alipay/fund.ts';
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable, SignatureError } from '../../server/errors.ts';
import { startAlipayHarness, waitFor, type AlipayHarness } from './alipay-harness.ts';

let h: AlipayHarness;
/** A merchant registered with its app gateway URL (应用网关) pointing at the harness's notify route. */
let raw: Record<string, string>;
let cred: AlipayCredentials;
let seq = 0;

beforeAll(async () => {
  h = await startAlipayHarness();
  raw = (await (await alipaySandbox.draftMerchant(h.deps)).register(h.deps.db, { appId: 'gateway', notifyUrl: `${h.base}/notify/alipay/gateway` })) as Record<string, string>;
  cred = alipay.parseCredentials(raw);
  // The harness's notify route verifies with its own merchant's key: messages of this one are verified here.
  h.cred = cred;
});
afterAll(() => h.stop());

const now = () => Math.floor(Date.now() / 1000);

function transfer(over: Partial<PayoutRequest> = {}): PayoutRequest {
  return {
    transferNo: `T${Date.now()}x${++seq}`,
    amount: 1288,
    currency: 'CNY',
    recipient: { type: 'alipay_user_id', account: '2088102146225135' },
    description: '十一月佣金 November commission',
    notifyUrl: `${h.base}/notify/alipay/gateway`,
    createdAt: now(),
    ...over,
  };
}

function packet(over: Partial<RedPacketRequest> = {}): RedPacketRequest {
  return {
    packetNo: `R${Date.now()}x${++seq}`,
    amount: 888,
    currency: 'CNY',
    recipient: { type: 'alipay_user_id', account: '2088102146225136' },
    senderName: 'Test Shop',
    wishing: '恭喜发财',
    actName: '新年活动',
    remark: '多多益善',
    clientIp: '127.0.0.1',
    createdAt: now(),
    ...over,
  };
}

const transferMessages = (no: string) => h.notifications.filter((n): n is TransferNotification => n.kind === 'transfer' && n.transferNo === no);
const packetMessages = (no: string) => h.notifications.filter((n): n is RedPacketNotification => n.kind === 'red_packet' && n.packetNo === no);

describe('transfers (alipay.fund.trans.uni.transfer)', () => {
  it('are registered for alipay and sign the biz_content the note gives', () => {
    expect(payoutChannelFor('alipay')).toBe(alipayPayouts);
    expect(redPacketChannelFor('alipay')).toBe(alipayRedPackets);
    const req = transfer({ recipient: { type: 'alipay_login_id', account: 'payee@example.com', name: '张三' } });
    expect(transferBizContent(req)).toEqual({
      out_biz_no: req.transferNo, trans_amount: '12.88', product_code: 'TRANS_ACCOUNT_NO_PWD', biz_scene: 'DIRECT_TRANSFER',
      order_title: '十一月佣金 November commission', payee_info: { identity: 'payee@example.com', identity_type: 'ALIPAY_LOGON_ID', name: '张三' },
    });
    expect(redPacketBizContent(packet())).toMatchObject({ product_code: 'STD_RED_PACKET', business_params: '{"sub_biz_scene":"REDPACKET"}', order_title: '恭喜发财' });
  });

  it('pay at once in certificate mode; the order.changed message says so; a resubmission pays nothing more', async () => {
    expect(cred.certMode).toBeDefined();
    const req = transfer();
    const r = await alipayPayouts.submit(cred, req);
    expect(r.status).toBe('succeeded');
    expect(r.channelTransferNo).toMatch(/^\d{16,40}$/);
    expect(r.paidAt).toBeGreaterThan(now() - 60);
    const n = await waitFor(() => transferMessages(req.transferNo)[0]);
    expect(n).toMatchObject({ kind: 'transfer', status: 'succeeded', amount: 1288, channelTransferNo: r.channelTransferNo, appId: raw.app_id });
    expect(n.notifyId).toBeTruthy();
    expect(await alipayPayouts.query(cred, req)).toMatchObject({ status: 'succeeded', channelTransferNo: r.channelTransferNo });
    const again = await alipayPayouts.submit(cred, req);
    expect(again).toMatchObject({ status: 'succeeded', channelTransferNo: r.channelTransferNo });
    expect(await sandboxFundPaidCount(h.deps, raw.app_id!, req.transferNo)).toBe(1);
  });

  it('the same out_biz_no with another body is a caller error (transfer_no_reused), never a failed transfer', async () => {
    const req = transfer();
    expect((await alipayPayouts.submit(cred, req)).status).toBe('succeeded');
    const err = await alipayPayouts.submit(cred, { ...req, amount: req.amount + 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChannelRequestError);
    expect((err as ChannelRequestError).code).toBe('transfer_no_reused');
    expect(await sandboxFundPaidCount(h.deps, raw.app_id!, req.transferNo)).toBe(1);
  });

  it('pay a login id with its real name, and an open id', async () => {
    const byLogin = transfer({ recipient: { type: 'alipay_login_id', account: '13800138000', name: '李四' } });
    expect((await alipayPayouts.submit(cred, byLogin)).status).toBe('succeeded');
    const byOpenId = transfer({ recipient: { type: 'alipay_open_id', account: '074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5' } });
    expect((await alipayPayouts.submit(cred, byOpenId)).status).toBe('succeeded');
  });

  it('refusals fail the transfer with the sub_code, nothing is paid, and the query finds nothing', async () => {
    for (const [over, code] of [
      [{ recipient: { type: 'alipay_user_id', account: '2088999999999999' } }, 'PAYEE_NOT_EXIST'],
      [{ amount: 40301 }, 'PAYER_BALANCE_NOT_ENOUGH'],
      [{ amount: 40302 }, 'EXCEED_LIMIT_DM_AMOUNT'],
      [{ recipient: { type: 'alipay_login_id', account: 'payee@example.com', name: '不匹配' } }, 'PAYEE_USER_INFO_ERROR'],
    ] as const) {
      const req = transfer(over as Partial<PayoutRequest>);
      const r = await alipayPayouts.submit(cred, req);
      expect(r, code).toMatchObject({ status: 'failed', failureCode: code });
      expect(r.failureMessage).toContain(code);
      expect(await alipayPayouts.query(cred, req)).toEqual({ status: 'not_found' });
      expect(await sandboxFundPaidCount(h.deps, raw.app_id!, req.transferNo)).toBe(0);
    }
  });

  it('an unknown answer (20000) is thrown; the query finds the transfer paid, once', async () => {
    const req = transfer({ amount: 50001 });
    await expect(alipayPayouts.submit(cred, req)).rejects.toBeInstanceOf(ChannelUnavailable);
    expect(await alipayPayouts.query(cred, req)).toMatchObject({ status: 'succeeded' });
    expect(await sandboxFundPaidCount(h.deps, raw.app_id!, req.transferNo)).toBe(1);
  });

  it('a number never used is not_found; public-key-mode credentials are a config error before any call', async () => {
    expect(await alipayPayouts.query(cred, transfer())).toEqual({ status: 'not_found' });
    const { app_cert: _a, alipay_public_cert: _b, alipay_root_cert: _c, ...keyMode } = raw;
    const plain = alipay.parseCredentials(keyMode);
    expect(plain.certMode).toBeUndefined();
    await expect(alipayPayouts.submit(plain, transfer())).rejects.toBeInstanceOf(ChannelConfigError);
    await expect(alipayPayouts.query(plain, transfer())).rejects.toThrow(/certificate mode/);
  });

  it('a message that does not verify is refused', async () => {
    const req = transfer();
    await alipayPayouts.submit(cred, req);
    const real = await waitFor(() => h.notifyBodies.map((b) => new URLSearchParams(b.toString())).find((p) => p.get('msg_method') && p.get('biz_content')?.includes(req.transferNo)));
    const forged = new URLSearchParams(real);
    forged.set('biz_content', real.get('biz_content')!.replace(/"status":"SUCCESS"/, '"status":"FAIL"'));
    await expect(alipay.parseNotification(cred, { headers: {}, contentType: 'application/x-www-form-urlencoded', body: Buffer.from(forged.toString()) })).rejects.toBeInstanceOf(SignatureError);
    // The genuine one parses again (a duplicate is the core's to ignore).
    const again = await alipay.parseNotification(cred, { headers: {}, contentType: 'application/x-www-form-urlencoded', body: Buffer.from(real.toString()) });
    expect(again).toMatchObject({ kind: 'transfer', transferNo: req.transferNo, status: 'succeeded' });
  });

  it('validate() refuses what Alipay would, naming the parameter', () => {
    const base = { amount: 1000, currency: 'CNY', recipient: { type: 'alipay_user_id' as const, account: '2088102146225135' }, description: 'x' };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ amount: 9 }, 'amount'],
      [{ amount: 10_000_000_001 }, 'amount'],
      [{ currency: 'USD' }, 'currency'],
      [{ recipient: { type: 'wechat_openid', account: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' } }, 'recipient.type'],
      [{ recipient: { type: 'alipay_user_id', account: '1234' } }, 'recipient.account'],
      [{ recipient: { type: 'alipay_login_id', account: 'not a login' , name: '张三' } }, 'recipient.account'],
      [{ recipient: { type: 'alipay_login_id', account: 'payee@example.com' } }, 'recipient.name'],
      [{ recipient: { type: 'alipay_user_id', account: '2088102146225135', name: '名'.repeat(129) } }, 'recipient.name'],
      [{ description: '   ' }, 'description'],
    ];
    for (const [over, param] of cases) expect(alipayPayouts.validate({ ...base, ...over } as never)?.param, JSON.stringify(over)).toBe(param);
    expect(alipayPayouts.validate(base)).toBeNull();
    expect(alipayRedPackets.validate({ ...packet(), amount: 1 })).toBeNull();
    expect(alipayRedPackets.validate({ ...packet(), amount: 0 })?.param).toBe('amount');
    expect(alipayRedPackets.validate({ ...packet(), sceneId: 'PRODUCT_1' })?.param).toBe('scene_id');
  });
});

describe('red packets (STD_RED_PACKET)', () => {
  it('are in the recipient\'s Alipay at once: received, by the answer, the query and the message', async () => {
    const req = packet();
    const r = await alipayRedPackets.send(cred, req);
    expect(r).toMatchObject({ status: 'received' });
    expect(r.channelPacketNo).toBeTruthy();
    expect(await alipayRedPackets.query(cred, req)).toMatchObject({ status: 'received', channelPacketNo: r.channelPacketNo });
    const n = await waitFor(() => packetMessages(req.packetNo)[0]);
    expect(n).toMatchObject({ kind: 'red_packet', status: 'received', amount: 888, channelPacketNo: r.channelPacketNo });
    expect(await sandboxFundPaidCount(h.deps, raw.app_id!, req.packetNo)).toBe(1);
  });

  it('a refusal fails the packet; an unknown one is not_found', async () => {
    const req = packet({ recipient: { type: 'alipay_user_id', account: '2088999999999999' } });
    expect(await alipayRedPackets.send(cred, req)).toMatchObject({ status: 'failed', failureCode: 'PAYEE_NOT_EXIST' });
    expect(await alipayRedPackets.query(cred, packet())).toEqual({ status: 'not_found' });
  });
});
