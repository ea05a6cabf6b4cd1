/**
 * Charging one period (DESIGN §2.5): each try is one payment with one attempt (channel
 * alipay_agreement or wechat_papay), written with a fixed order number in the transaction that
 * takes the try, then sent as the channel's deduction. An unknown answer leaves the attempt
 * pending: it is queried before it is ever sent again, and then under the same number (both
 * channels dedupe by out_trade_no), so a period is charged at most once whatever crashes or
 * retries happen. On WeChat a period's tries wait for its pre-deduction notice (papay-schedule.ts).
 */
import type { Deps } from '../deps.ts';
import { newId, randomId } from '../crypto.ts';
import { ChannelUnavailable } from '../errors.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import { channelFor } from '../channels/registry.ts';
import type { AlipayCredentials } from '../channels/alipay/index.ts';
import { deductWithAgreement } from '../channels/alipay/agreements.ts';
import type { WechatpayCredentials } from '../channels/wechatpay/index.ts';
import { applyDeduction, queryDeduction, sendPreDeductNotice } from '../channels/wechatpay/papay.ts';
import { transaction, sqlOf } from '../sql.ts';
import { applyAttemptOutcome } from '../payments/service.ts';
import { attemptFromRow, findAttemptByOrderNo, type AttemptRow } from '../payments/repo.ts';
import { agreementFromRow, type AgreementRow } from '../agreements/repo.ts';
import { findSubscriptionById, updatePeriod, type PeriodRow, type SubscriptionRow } from './repo.ts';
import { endSubscription, periodLost } from './service.ts';
import { deductionWindow } from './schedule.ts';
import { noticeAtMs, papayWindow, PAPAY_TRIES, nextPapayTryAtMs } from './papay-schedule.ts';

/** How long a claimed period is left to its claimant before another process may look at it. */
export const PERIOD_LEASE_MS = 120_000;
/** An answer still pending (or unknown) is looked at again this much later. */
const LOOK_AGAIN_MS = 60_000;
const FIRST_QUERY_MS = 10_000;

const notifyUrlOf = (deps: Deps, provider: 'alipay' | 'wechatpay', appId: string) => `${deps.config.publicUrl.replace(/\/$/, '')}/notify/${provider}/${appId}`;

export type DriveResult = 'charged' | 'failed' | 'pending' | 'waiting' | 'ended';

type SendResult = { status: 'succeeded'; channelTradeNo: string; paidAt?: number } | { status: 'pending' } | { status: 'failed'; code: string; message: string };
type QueryResult =
  | { status: 'succeeded'; channelTradeNo?: string; paidAt?: number; amount?: number }
  | { status: 'closed'; code: string; message: string }
  | { status: 'pending' }
  | { status: 'not_found' };

/** One agreement channel's deduction, as the period driver needs it. */
interface Deductor {
  provider: 'alipay' | 'wechatpay';
  code: 'alipay_agreement' | 'wechat_papay';
  /** Tries a period may take. */
  tries: number;
  send(orderNo: string): Promise<SendResult>;
  query(orderNo: string): Promise<QueryResult>;
  /** When the channel takes this period's deduction; null: not before something else is done (WeChat's notice). */
  window(p: PeriodRow): { opensMs: number; closesMs: number } | null;
}

async function deductorOf(deps: Deps, s: SubscriptionRow, a: AgreementRow): Promise<Deductor> {
  if (a.channel === 'wechatpay') {
    const cred = (await getCredentials(deps, s.app_id, 'wechatpay', s.livemode)) as WechatpayCredentials;
    return {
      provider: 'wechatpay', code: 'wechat_papay', tries: PAPAY_TRIES,
      send: (orderNo) => applyDeduction(cred, { orderNo, contractId: a.channel_agreement_no!, amount: s.amount, subject: s.subject, notifyUrl: notifyUrlOf(deps, 'wechatpay', s.app_id) }),
      async query(orderNo) {
        const q = await queryDeduction(cred, orderNo);
        return q.status === 'failed' ? { status: 'closed', code: q.code, message: q.message } : q;
      },
      window: (p) => (p.notice_at_ms === null ? null : papayWindow(p.notice_at_ms)),
    };
  }
  const cred = (await getCredentials(deps, s.app_id, 'alipay', s.livemode)) as AlipayCredentials;
  return {
    provider: 'alipay', code: 'alipay_agreement', tries: 3,
    send: (orderNo) => deductWithAgreement(cred, { orderNo, agreementNo: a.channel_agreement_no!, amount: s.amount, subject: s.subject, notifyUrl: notifyUrlOf(deps, 'alipay', s.app_id) }),
    async query(orderNo) {
      const q = await channelFor('alipay')!.queryPayment(cred, orderNo);
      if (q.status === 'closed') return { status: 'closed', code: 'TRADE_CLOSED', message: 'The deduction was closed at Alipay.' };
      if (q.status === 'succeeded') return { status: 'succeeded', channelTradeNo: q.channelTradeNo, paidAt: q.paidAt, amount: q.amount };
      return q.status === 'not_found' ? { status: 'not_found' } : { status: 'pending' };
    },
    window: (p) => deductionWindow(p.scheduled_date),
  };
}

/**
 * Moves a claimed period on (its next_try_at_ms is the claimant's lease). `nowMs` is the
 * subscription's time: real time, or its test clock's.
 */
export async function drivePeriod(deps: Deps, p: PeriodRow, nowMs: number): Promise<DriveResult> {
  const db = sqlOf(deps.db);
  const s = await findSubscriptionById(db, p.subscription_id);
  if (!s) return 'ended';
  const a = agreementFromRow(await db.first('select * from agreements where id = ?', [s.agreement_id]));
  if (s.status === 'canceled' || a.status !== 'active') {
    await transaction(deps.db, async (tx) => {
      if (s.status !== 'canceled') await endSubscription(tx, s, 'agreement_terminated', Math.floor(nowMs / 1000));
      else await updatePeriod(tx, p, { status: 'canceled', next_try_at_ms: null });
    });
    await deps.bus.publish('webhooks', s.id);
    return 'ended';
  }
  const d = await deductorOf(deps, s, a);

  // A try in flight: ask the channel before anything is sent again.
  const inFlight = p.order_no ? await findAttemptByOrderNo(db, d.provider, p.order_no) : undefined;
  if (inFlight && inFlight.status === 'pending') return resolveInFlight(deps, d, s, p, inFlight, nowMs);
  if (inFlight && inFlight.status === 'succeeded') return 'charged';

  if (s.cancel_at_period_end) {
    // The period before this one is the last: it ends the subscription when it ends, uncharged.
    if (nowMs < p.period_start * 1000) {
      await updatePeriod(db, p, { next_try_at_ms: p.period_start * 1000 });
      return 'waiting';
    }
    await transaction(deps.db, (tx) => endSubscription(tx, s, 'period_end', p.period_start));
    await deps.bus.publish('webhooks', s.id);
    return 'ended';
  }
  if (d.provider === 'wechatpay' && p.notice_at_ms === null) return sendNotice(deps, s, a, p, nowMs);
  const window = d.window(p)!;
  if (nowMs >= window.closesMs || p.tries >= d.tries) {
    // The channel takes no deduction for this period any more.
    await transaction(deps.db, (tx) => periodLost(tx, s, p, nowMs));
    await deps.bus.publish('webhooks', s.id);
    return 'failed';
  }
  if (nowMs < window.opensMs) {
    await updatePeriod(db, p, { next_try_at_ms: window.opensMs });
    return 'waiting';
  }
  const attempt = await startTry(deps, d, s, p, window.closesMs, nowMs);
  if (!attempt) return 'waiting';
  return send(deps, d, s, { ...p, tries: p.tries + 1, order_no: attempt.channel_order_no }, attempt, nowMs);
}

/**
 * WeChat's pre-deduction notice of the period (recurring.md §2.3), at its time (06:00–22:00
 * Beijing); the first try is then due after the waiting day. A notice whose answer is unknown
 * is sent again later: a second notice of the same amount does no harm.
 */
async function sendNotice(deps: Deps, s: SubscriptionRow, a: AgreementRow, p: PeriodRow, nowMs: number): Promise<DriveResult> {
  const at = noticeAtMs(p.scheduled_date, nowMs);
  if (nowMs < at) {
    await updatePeriod(sqlOf(deps.db), p, { next_try_at_ms: at });
    return 'waiting';
  }
  const cred = (await getCredentials(deps, s.app_id, 'wechatpay', s.livemode)) as WechatpayCredentials;
  try {
    await sendPreDeductNotice(cred, a.channel_agreement_no!, { amount: s.amount });
  } catch (err) {
    deps.logger.warn('subscription pre-deduction notice not sent; it is tried again', { subscription_id: s.id, period: p.period_index, err });
    await updatePeriod(sqlOf(deps.db), p, { next_try_at_ms: noticeAtMs(p.scheduled_date, nowMs + LOOK_AGAIN_MS) });
    if (err instanceof ChannelUnavailable) return 'pending';
    throw err;
  }
  const first = nextPapayTryAtMs(nowMs, 0, nowMs)!;
  await updatePeriod(sqlOf(deps.db), p, { notice_at_ms: nowMs, next_try_at_ms: first });
  deps.logger.info('subscription pre-deduction notice sent', { subscription_id: s.id, period: p.period_index });
  return 'waiting';
}

/** Writes the try's payment and attempt, and takes the try on the period, in one transaction; undefined when the lease was lost. */
async function startTry(deps: Deps, d: Deductor, s: SubscriptionRow, p: PeriodRow, closesMs: number, nowMs: number): Promise<AttemptRow | undefined> {
  const paymentId = newId('pay');
  const attemptId = newId('att');
  // The same shape as the cashier's order numbers (startAttempt): fixed before the deduction is sent.
  const orderNo = `cs${randomId(30)}`;
  const created = Math.floor(nowMs / 1000);
  const tryNo = p.tries + 1;
  const payment = {
    id: paymentId,
    app_id: s.app_id,
    livemode: s.livemode,
    out_trade_no: `${s.id}_${p.period_index}_${tryNo}`,
    amount: s.amount,
    currency: s.currency,
    subject: s.subject,
    description: null,
    channel: d.code,
    status: 'pending',
    amount_refunded: 0,
    // Past the deduction window nothing can be paid; a day more leaves room for a late answer.
    expires_at: Math.floor(closesMs / 1000) + 86_400,
    return_url: null,
    metadata: JSON.stringify(s.metadata),
    checkout_token: randomId(32),
    client_ip: null,
    created,
    updated_ms: Date.now(),
    next_action: null,
    next_action_attempt_id: null,
    last_attempt_error: null,
    customer_id: s.customer_id,
    coupon_id: null,
    amount_original: s.amount,
    amount_discount: 0,
    purpose: 'payment',
    allow_coupon_code: false,
    coupon_entry_open: false,
    subscription_id: s.id,
    subscription_period: p.period_index,
  };
  const attempt = {
    id: attemptId,
    payment_id: paymentId,
    app_id: s.app_id,
    livemode: s.livemode,
    channel: d.code,
    provider: d.provider,
    channel_order_no: orderNo,
    status: 'pending',
    created,
    updated_ms: Date.now(),
    // A clocked (test) subscription is settled by its test clock; others by the payments worker too
    // (Alipay: trade.query; a WeChat PAP order is asked with paporderquery, by this scheduler only).
    next_query_at_ms: p.clocked || d.provider === 'wechatpay' ? null : Date.now() + FIRST_QUERY_MS,
  };
  const took = await transaction(deps.db, async (tx) => {
    if (!(await updatePeriod(tx, p, { tries: tryNo, payment_id: paymentId, order_no: orderNo, submit_count: 1 }))) return false;
    await tx.insert('payments', payment);
    await tx.insert('payment_attempts', attempt);
    await tx.run('update subscriptions set latest_payment_id = ?, updated_ms = ? where id = ?', [paymentId, Date.now(), s.id]);
    return true;
  });
  return took ? attemptFromRow(attempt) : undefined;
}

/** Sends the try's deduction and applies a final answer through the payments machinery. */
async function send(deps: Deps, d: Deductor, s: SubscriptionRow, p: PeriodRow, attempt: AttemptRow, nowMs: number): Promise<DriveResult> {
  let r: SendResult;
  try {
    r = await d.send(attempt.channel_order_no);
  } catch (err) {
    // Sent or not, nobody knows: the order is asked about before it is sent again.
    deps.logger.warn('subscription deduction answered unknown; it will be queried', { subscription_id: s.id, period: p.period_index, order_no: attempt.channel_order_no, err });
    await lookAgain(deps, p, nowMs + LOOK_AGAIN_MS);
    if (err instanceof ChannelUnavailable) return 'pending';
    throw err;
  }
  if (r.status === 'succeeded') {
    await applyAttemptOutcome(deps, attempt, { status: 'succeeded', channelTradeNo: r.channelTradeNo, paidAt: r.paidAt });
    return 'charged';
  }
  if (r.status === 'failed') {
    await applyAttemptOutcome(deps, attempt, { status: 'closed', failureCode: r.code, failureMessage: r.message });
    return 'failed';
  }
  // Accepted (WeChat's pappayapply always, Alipay's asynchronous mode): the notify or a query settles it.
  await lookAgain(deps, p, nowMs + LOOK_AGAIN_MS);
  return 'pending';
}

/** The next look at a try still in flight (its order number): replaces the claimant's lease. */
async function lookAgain(deps: Deps, p: PeriodRow, atMs: number): Promise<void> {
  await sqlOf(deps.db).run(
    `update subscription_periods set next_try_at_ms = ?, updated_ms = ? where subscription_id = ? and period_index = ? and status = 'pending' and order_no = ?`,
    [atMs, Date.now(), p.subscription_id, p.period_index, p.order_no],
  );
}

/**
 * A try whose answer is not known: the channel is asked by its order number. Paid or closed
 * settles it; still pending waits; unknown to the channel (the deduction never arrived) is sent
 * again under the same number while the window is open, else the try failed.
 */
async function resolveInFlight(deps: Deps, d: Deductor, s: SubscriptionRow, p: PeriodRow, attempt: AttemptRow, nowMs: number): Promise<DriveResult> {
  const q = await d.query(attempt.channel_order_no);
  if (q.status === 'succeeded') {
    if (q.amount !== undefined && q.amount !== s.amount) {
      deps.logger.error('subscription deduction amount differs at the channel', { subscription_id: s.id, order_no: attempt.channel_order_no });
      return 'pending';
    }
    await applyAttemptOutcome(deps, attempt, { status: 'succeeded', channelTradeNo: q.channelTradeNo, paidAt: q.paidAt });
    return 'charged';
  }
  if (q.status === 'closed') {
    await applyAttemptOutcome(deps, attempt, { status: 'closed', failureCode: q.code, failureMessage: q.message });
    return 'failed';
  }
  if (q.status === 'pending') {
    await lookAgain(deps, p, nowMs + LOOK_AGAIN_MS);
    return 'pending';
  }
  const window = d.window(p);
  if (!window || nowMs >= window.closesMs) {
    await applyAttemptOutcome(deps, attempt, { status: 'closed', failureCode: 'window_closed', failureMessage: 'The deduction never reached the channel inside its window.' });
    return 'failed';
  }
  if (!(await updatePeriod(sqlOf(deps.db), p, { submit_count: p.submit_count + 1 }))) return 'waiting';
  return send(deps, d, s, { ...p, submit_count: p.submit_count + 1 }, attempt, nowMs);
}
