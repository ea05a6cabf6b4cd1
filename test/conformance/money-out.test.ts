/**
 * The money-out conformance suite (issue 14, Tests): one story run for every payout channel,
 * through the API of an in-process gateway against the channels' simulators. Success paid
 * exactly once, a scripted refusal, an unknown answer settled by the worker's query without a
 * second submission, forged and mismatched notifies refused, a genuine notify replayed without a
 * second event; and, for channels where the recipient must confirm, the lapse and the cancel.
 * A profile holds only what differs between channels; channel-only cases (balances, names, red
 * packets, bad input) stay in test/api/transfers-<channel>.test.ts.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import { startPaymentWorker } from '../../server/payments/worker.ts';
import { findMerchant as findAlipayMerchant } from '../../server/sandbox/alipay/store.ts';
import { findFundTransfer } from '../../server/sandbox/alipay/fund-store.ts';
import { fundMessageParams } from '../../server/sandbox/alipay/notify.ts';
import { sandboxFundPaidCount } from '../../server/sandbox/alipay/fund.ts';
import { findMerchant as findWechatMerchant } from '../../server/sandbox/wechatpay/store.ts';
import { findBill } from '../../server/sandbox/wechatpay/transfer-store.ts';
import { notifyRequest } from '../../server/sandbox/wechatpay/notify.ts';
import { sandboxTransferPaidCount, transferNotify } from '../../server/sandbox/wechatpay/transfers.ts';
import { wechatpaySandbox } from '../../server/sandbox/wechatpay/index.ts';

/** An HTTP message as a channel (or an attacker) would post it to /notify/<provider>/<app id>. */
interface NotifyMessage {
  contentType: string;
  headers?: Record<string, string>;
  body: string;
}

/** A transfer as the API answers it (the fields the suite reads). */
type Transfer = { id: string; status: string; [k: string]: any };

/** The channel's own app and merchant ids, read once from the test app's sandbox credentials. */
interface Ctx {
  g: TestGateway;
  channelAppId: string;
  merchantId: string;
}

/** What differs between payout channels; everything else is the same story. */
interface MoneyOutProfile {
  channel: 'alipay' | 'wechatpay';
  /** True when the recipient must confirm (WeChat 商家转账): lapse and cancel run too. */
  recipientStep: boolean;
  recipient(ctx: Ctx): Record<string, unknown>;
  /** The status a plain transfer has right after create, and its events on the way to success. */
  createdStatus: 'succeeded' | 'awaiting_recipient';
  successEvents: string[];
  /** Brings a transfer in createdStatus to succeeded, as the channel's recipient would. */
  reachSuccess(ctx: Ctx, t: Transfer): Promise<void>;
  /** The scripted refusal (simulator header) and the failure_code it gives. */
  refusal: { body: (ctx: Ctx) => Record<string, unknown>; code: string };
  /** The amount the simulator creates but answers unknown (Alipay 20000, WeChat 500 SYSTEM_ERROR). */
  unknownAmount: number;
  /** A transfer the channel holds unfinished and will not notify about by itself. */
  unsettled: { body: Record<string, unknown>; status: string };
  /** How many times the simulator paid this transfer out. */
  paidCount(ctx: Ctx, transferNo: string): Promise<number>;
  /** The channel's notify saying the transfer succeeded, genuinely signed; `amount` overrides the paid amount. */
  genuine(ctx: Ctx, transferNo: string, patch?: { amount?: number }): Promise<NotifyMessage>;
  /** The same notify, signed with a key that is not the channel's. */
  forged(ctx: Ctx, transferNo: string): Promise<NotifyMessage>;
  /** The answer body that tells the channel its notify was taken. */
  accepted(status: number, body: string): boolean;
}

const form = (p: Record<string, string>): NotifyMessage => ({ contentType: 'application/x-www-form-urlencoded; charset=utf-8', body: new URLSearchParams(p).toString() });
const strangerKey = () => crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;

async function alipayFundOrder(ctx: Ctx, transferNo: string) {
  const merchant = (await findAlipayMerchant(ctx.g.deps.db, ctx.g.deps.config.masterKeyBytes, ctx.channelAppId))!;
  const t = (await findFundTransfer(ctx.g.deps.db, ctx.channelAppId, { outBizNo: transferNo }))!;
  expect(t, `no fund order ${transferNo} at the Alipay simulator`).toBeTruthy();
  return { merchant, t };
}

async function wechatBill(ctx: Ctx, transferNo: string) {
  const merchant = (await findWechatMerchant(ctx.g.deps.db, ctx.g.deps.config.masterKeyBytes, ctx.merchantId))!;
  const bill = (await findBill(ctx.g.deps.db, ctx.merchantId, transferNo))!;
  expect(bill, `no transfer bill ${transferNo} at the WeChat simulator`).toBeTruthy();
  return { merchant, bill };
}

const simulate = (ctx: Ctx, id: string, outcome: string) => ctx.g.api('POST', `/v1/test_helpers/transfers/${id}/simulate`, { outcome });

const alipay: MoneyOutProfile = {
  channel: 'alipay',
  recipientStep: false,
  recipient: () => ({ type: 'alipay_user_id', account: '2088102146225135' }),
  createdStatus: 'succeeded',
  successEvents: ['transfer.succeeded'],
  reachSuccess: async () => {},
  // fund.ts: payee ALIPAY_USER_ID 2088999999999999 → 40004 PAYEE_NOT_EXIST, nothing created.
  refusal: { body: () => ({ recipient: { type: 'alipay_user_id', account: '2088999999999999' } }), code: 'PAYEE_NOT_EXIST' },
  // fund.ts: 500.01 is created and paid, answered 20000 isp.unknow-error.
  unknownAmount: 50001,
  // …and with [drop-message] in the title its order.changed message is never sent.
  unsettled: { body: { amount: 50001, description: '佣金 [drop-message]' }, status: 'pending' },
  paidCount: (ctx, no) => sandboxFundPaidCount(ctx.g.deps, ctx.channelAppId, no),
  genuine: async (ctx, no, patch = {}) => {
    const { merchant, t } = await alipayFundOrder(ctx, no);
    return form(fundMessageParams(merchant, { ...t, amount: patch.amount ?? t.amount }));
  },
  forged: async (ctx, no) => {
    const { merchant, t } = await alipayFundOrder(ctx, no);
    return form(fundMessageParams({ ...merchant, alipayPrivateKey: strangerKey() }, t));
  },
  // Alipay retries whatever is not the plain text "success".
  accepted: (status, body) => status === 200 && body === 'success',
};

const wechatpay: MoneyOutProfile = {
  channel: 'wechatpay',
  recipientStep: true,
  recipient: (ctx) => ({
    type: 'wechat_openid',
    account: wechatpaySandbox.payerId!({ db: ctx.g.deps.db, publicUrl: ctx.g.deps.config.publicUrl, masterKey: ctx.g.deps.config.masterKeyBytes, logger: ctx.g.deps.logger }, ctx.channelAppId),
  }),
  createdStatus: 'awaiting_recipient',
  successEvents: ['transfer.awaiting_recipient', 'transfer.succeeded'],
  reachSuccess: async (ctx, t) => {
    const done = await simulate(ctx, t.id, 'confirm');
    expect(done.status, JSON.stringify(done.body)).toBe(200);
  },
  // transfers.ts: transfer_amount 40301 → 403 NOT_ENOUGH, no bill created.
  refusal: { body: () => ({ amount: 40301 }), code: 'NOT_ENOUGH' },
  // transfers.ts: 50001 creates the bill (WAIT_USER_CONFIRM) but answers 500 SYSTEM_ERROR.
  unknownAmount: 50001,
  // A bill waiting for its recipient: WeChat notifies only final states.
  unsettled: { body: {}, status: 'awaiting_recipient' },
  paidCount: (ctx, no) => sandboxTransferPaidCount(ctx.g.deps, ctx.merchantId, no),
  genuine: async (ctx, no, patch = {}) => {
    const { merchant, bill } = await wechatBill(ctx, no);
    // The simulator's own MCHTRANSFER.BILL.FINISHED builder, for the bill as paid.
    return notifyRequest(merchant, transferNotify(merchant, { ...bill, state: 'SUCCESS', amount: patch.amount ?? bill.amount }));
  },
  forged: async (ctx, no) => {
    const { merchant, bill } = await wechatBill(ctx, no);
    return notifyRequest({ ...merchant, platformPrivateKey: strangerKey() }, transferNotify(merchant, { ...bill, state: 'SUCCESS' }));
  },
  // WeChat retries whatever is not a 2xx.
  accepted: (status) => status >= 200 && status < 300,
};

describe.each([alipay, wechatpay])('money-out conformance: $channel', (profile) => {
  let ctx: Ctx;
  let seq = 0;
  const no = (p: string) => `${p}_${Date.now().toString(36)}_${++seq}`;

  beforeAll(async () => {
    const g = await startTestGateway({ workers: false });
    const cred: any = await getCredentials(g.deps, g.app.app_id, profile.channel, false);
    ctx = profile.channel === 'alipay' ? { g, channelAppId: cred.appId, merchantId: cred.appId } : { g, channelAppId: cred.appid, merchantId: cred.mchid };
  });
  afterAll(() => ctx?.g.close());

  const create = async (body: Record<string, unknown> = {}): Promise<Transfer> => {
    const res = await ctx.g.api('POST', '/v1/transfers', {
      channel: profile.channel, amount: 1000, out_transfer_no: no('mo'), recipient: profile.recipient(ctx), description: '佣金', ...body,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body;
  };
  const get = async (id: string): Promise<Transfer> => (await ctx.g.api('GET', `/v1/transfers/${id}`)).body;
  const row = (id: string) => ctx.g.deps.db('transfers').where({ id }).first();
  const transferNoOf = async (id: string) => (await row(id)).transfer_no as string;
  const eventTypes = async (id: string) =>
    (await ctx.g.deps.db('events').where({ object_id: id }).orderBy([{ column: 'created', order: 'asc' }, { column: 'id', order: 'asc' }])).map((e) => e.type);
  const post = async (msg: NotifyMessage) => {
    const res = await fetch(`${ctx.g.url}/notify/${profile.channel}/${ctx.g.app.app_id}`, { method: 'POST', headers: { 'content-type': msg.contentType, ...msg.headers }, body: msg.body });
    return { status: res.status, body: await res.text() };
  };
  /** One worker pass with the clock 2 h ahead, so every transfer's next look is due. */
  async function workerPass(ms = 2 * 3600_000) {
    const w = startPaymentWorker(ctx.g.deps, { background: false, now: () => Date.now() + ms });
    try {
      return await w.runOnce();
    } finally {
      await w.stop();
    }
  }

  it('success: succeeded with exactly one transfer.succeeded, paid once at the simulator', async () => {
    const t = await create();
    expect(t).toMatchObject({ object: 'transfer', channel: profile.channel, status: profile.createdStatus });
    expect(t.channel_transfer_no).toBeTruthy();
    await profile.reachSuccess(ctx, t);
    expect(await get(t.id)).toMatchObject({ status: 'succeeded', next_action: null });
    expect(await eventTypes(t.id)).toEqual(profile.successEvents);
    expect(await profile.paidCount(ctx, await transferNoOf(t.id))).toBe(1);
  });

  it('refusal: failed with the channel code and transfer.failed, nothing paid', async () => {
    const t = await create(profile.refusal.body(ctx));
    expect(t).toMatchObject({ status: 'failed', failure_code: profile.refusal.code });
    expect(await eventTypes(t.id)).toEqual(['transfer.failed']);
    expect(await profile.paidCount(ctx, await transferNoOf(t.id))).toBe(0);
  });

  it('unknown answer: pending, then the worker query settles it without a second submission', async () => {
    const t = await create({ amount: profile.unknownAmount });
    expect(t.status).toBe('pending');
    await workerPass();
    const queried = await get(t.id);
    expect(queried.status).toBe(profile.createdStatus);
    await profile.reachSuccess(ctx, queried);
    expect((await get(t.id)).status).toBe('succeeded');
    expect(Number((await row(t.id)).submit_count)).toBe(1);
    expect(await profile.paidCount(ctx, await transferNoOf(t.id))).toBe(1);
    expect(await eventTypes(t.id)).toEqual(profile.successEvents);
  });

  it('forged notify: refused non-2xx, nothing changes', async () => {
    const t = await create(profile.unsettled.body);
    expect(t.status).toBe(profile.unsettled.status);
    const before = await eventTypes(t.id);
    const res = await post(await profile.forged(ctx, await transferNoOf(t.id)));
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect((await get(t.id)).status).toBe(profile.unsettled.status);
    expect(await eventTypes(t.id)).toEqual(before);
  });

  it('mismatched amount notify: genuinely signed, refused non-2xx, nothing changes', async () => {
    const t = await create(profile.unsettled.body);
    expect(t.status).toBe(profile.unsettled.status);
    const before = await eventTypes(t.id);
    const res = await post(await profile.genuine(ctx, await transferNoOf(t.id), { amount: t.amount + 100 }));
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect((await get(t.id)).status).toBe(profile.unsettled.status);
    expect(await eventTypes(t.id)).toEqual(before);
    // The genuine one still settles it afterwards.
    const ok = await post(await profile.genuine(ctx, await transferNoOf(t.id)));
    expect(profile.accepted(ok.status, ok.body), `${ok.status} ${ok.body}`).toBe(true);
    expect((await get(t.id)).status).toBe('succeeded');
  });

  it('duplicates: a replayed genuine notify and a later query pass are acknowledged, no second event', async () => {
    const t = await create();
    await profile.reachSuccess(ctx, t);
    expect((await get(t.id)).status).toBe('succeeded');
    const msg = await profile.genuine(ctx, await transferNoOf(t.id));
    for (let i = 0; i < 2; i++) {
      const res = await post(msg);
      expect(profile.accepted(res.status, res.body), `${res.status} ${res.body}`).toBe(true);
    }
    await workerPass();
    expect((await get(t.id)).status).toBe('succeeded');
    expect(await eventTypes(t.id)).toEqual(profile.successEvents);
    expect(await profile.paidCount(ctx, await transferNoOf(t.id))).toBe(1);
  });

  it.runIf(profile.recipientStep)('recipient lapse: failed with OVERDUE_CLOSE, nothing paid', async () => {
    const t = await create();
    expect(t.status).toBe('awaiting_recipient');
    const after = (await simulate(ctx, t.id, 'expire')).body;
    expect(after).toMatchObject({ status: 'failed', failure_code: 'OVERDUE_CLOSE' });
    expect(await eventTypes(t.id)).toEqual(['transfer.awaiting_recipient', 'transfer.failed']);
    expect(await profile.paidCount(ctx, await transferNoOf(t.id))).toBe(0);
    // A final transfer takes no more recipient steps.
    expect((await simulate(ctx, t.id, 'confirm')).status).toBe(400);
  });

  it.runIf(profile.recipientStep)('cancel: before confirmation it ends canceled, nothing paid; after, it is refused', async () => {
    const t = await create();
    const canceled = await ctx.g.api('POST', `/v1/transfers/${t.id}/cancel`);
    expect(canceled.status, JSON.stringify(canceled.body)).toBe(200);
    expect(['canceled', 'awaiting_recipient']).toContain(canceled.body.status);
    // CANCELING settles into CANCELLED; the notify or the next look says so.
    expect((await get(t.id)).status).toBe('canceled');
    expect(await profile.paidCount(ctx, await transferNoOf(t.id))).toBe(0);
    const paid = await create();
    await profile.reachSuccess(ctx, paid);
    const late = await ctx.g.api('POST', `/v1/transfers/${paid.id}/cancel`);
    expect(late.status).toBe(400);
    expect(late.body.error).toMatchObject({ code: 'transfer_not_cancelable', param: 'id' });
  });
});
