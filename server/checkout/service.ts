import crypto from 'node:crypto';
import type { Deps } from '../deps.ts';
import { timingSafeEqualStr, nowSeconds } from '../crypto.ts';
import { isAgreementCode, isAppCode, providerOf, type ChannelCode, type Provider } from '../channels/types.ts';
import { channelFor, isImplemented } from '../channels/registry.ts';
import { expediteAttemptQuery, listAttempts, type AttemptRow, type PaymentRow } from '../payments/repo.ts';
import { refreshAttempt } from '../payments/service.ts';
import { formatAmount, type Lang, type Messages } from './i18n.ts';
import { BUYER_FEE_RATE_BP, installmentPlan, takesInstallments } from '../payments/installments.ts';

export type Environment = 'desktop' | 'mobile' | 'wechat' | 'alipay';

/** Where the customer is, from the user agent: it decides which channels can work. */
export function environmentOf(userAgent: string | undefined): Environment {
  const ua = userAgent ?? '';
  if (/MicroMessenger/i.test(ua)) return 'wechat';
  if (/AlipayClient/i.test(ua)) return 'alipay';
  if (/Mobi|Android|iPhone|iPad|iPod|HarmonyOS/i.test(ua)) return 'mobile';
  return 'desktop';
}

const byEnvironment: Record<Environment, ChannelCode[]> = {
  desktop: ['alipay_pc', 'alipay_qr', 'wechat_native', 'unionpay_pc', 'paypal', 'apple_pay', 'card'],
  mobile: ['alipay_wap', 'wechat_h5', 'unionpay_wap', 'paypal', 'apple_pay', 'card'],
  wechat: ['wechat_jsapi'],
  alipay: ['alipay_wap'],
};

/**
 * Apple Pay works only in Apple's browsers: Safari on a Mac, any browser on an iPhone or iPad
 * (all WebKit). Offered there only; the cashier's script then hides it unless
 * ApplePaySession.canMakePayments() says this device can pay.
 */
export function offersApplePay(userAgent: string | undefined): boolean {
  const ua = userAgent ?? '';
  if (/iPhone|iPad|iPod/.test(ua)) return true;
  return /Macintosh/.test(ua) && /Safari\//.test(ua) && !/Chrome|Chromium|CriOS|Firefox|FxiOS|Edg\//.test(ua);
}

/** Inside each wallet's own browser the other wallet's pages do not open (WeChat blocks Alipay's). */
const blockedIn: Partial<Record<Environment, Provider>> = { wechat: 'alipay', alipay: 'wechatpay' };

/**
 * The channels the cashier offers for this payment, here. A payment created for one channel
 * offers only it, and not inside the other wallet's app; one created for an in-app channel
 * (*_app), which no browser can pay, gets the usual choice. Never an in-app code itself: those
 * are paid in the merchant's own app (DESIGN §2). A payment in Huabei installments is offered
 * Alipay only (DESIGN §2.5).
 */
export function channelsFor(payment: PaymentRow, env: Environment, userAgent?: string): ChannelCode[] {
  const offered = payment.channel && !isAppCode(payment.channel) && !isAgreementCode(payment.channel) ? [payment.channel] : byEnvironment[env];
  return offered.filter(
    (code) => isImplemented(code) && !isAppCode(code) && !isAgreementCode(code) && providerOf(code) !== blockedIn[env] && takesCurrency(code, payment.currency)
      && (code !== 'apple_pay' || offersApplePay(userAgent)) && (!payment.installments || takesInstallments(code)),
  );
}

/** What the cashier shows of a payment in Huabei installments: the count, the fee, and each period's amount. */
export interface InstallmentsView {
  count: number;
  title: string;
  feeText: string;
  totalText: string;
  periods: Array<{ amount: number; fee: number; text: string }>;
}

export function installmentsViewOf(payment: PaymentRow, t: Messages, lang: Lang): InstallmentsView | undefined {
  if (!payment.installments) return undefined;
  const plan = installmentPlan(payment.amount, payment.installments);
  const money = (fen: number) => formatAmount(fen, payment.currency, lang);
  const feeText = plan.feePayer === 'merchant'
    ? t.installments_fee_merchant
    : t.installments_fee_customer.replace('{fee}', money(plan.totalFee)).replace('{rate}', `${BUYER_FEE_RATE_BP[plan.count] / 100}%`);
  return {
    count: plan.count,
    title: t.installments_title.replace('{n}', String(plan.count)),
    feeText,
    totalText: t.installments_total.replace('{total}', money(plan.total)),
    periods: plan.periods.map((p, i) => ({
      amount: p.amount,
      fee: p.fee,
      text: (plan.totalFee > 0 ? t.installment_period : t.installment_period_free).replace('{i}', String(i + 1)).replace('{amount}', money(p.amount)).replace('{fee}', money(p.fee)),
    })),
  };
}

/** Whether the channel's adapter takes the payment's currency (a USD payment is not offered Alipay or WeChat Pay). */
const takesCurrency = (code: ChannelCode, currency: string): boolean => Boolean(channelFor(providerOf(code))?.currencies.includes(currency));

/** The wallet apps that pay a scanned checkout URL inside themselves, and the channel each uses. */
export const IN_WALLET_CHANNEL = { wechat: 'wechat_jsapi', alipay: 'alipay_wap' } as const satisfies Partial<Record<Environment, ChannelCode>>;
export type Wallet = keyof typeof IN_WALLET_CHANNEL;

/**
 * The wallets in which this payment's checkout URL, scanned as a QR code, can be paid: the
 * aggregate QR code (聚合码) of the desktop cashier is shown only when there is one.
 */
export function walletsFor(payment: PaymentRow): Wallet[] {
  return (Object.keys(IN_WALLET_CHANNEL) as Wallet[]).filter((w) => channelsFor(payment, w).includes(IN_WALLET_CHANNEL[w]));
}

/**
 * Form token bound to the checkout token by an HMAC: the cashier runs in cross-site iframes where
 * third-party cookies are blocked, so no step may depend on a cookie (DESIGN §4).
 */
const formKeys = new WeakMap<Buffer, { key: Buffer; tokens: Map<string, string> }>();
export function formTokenFor(masterKey: Buffer, checkoutToken: string): string {
  let k = formKeys.get(masterKey);
  if (!k) formKeys.set(masterKey, (k = { key: crypto.createHmac('sha256', masterKey).update('checkstand cashier form v1').digest(), tokens: new Map() }));
  // Every page view of a checkout needs its token: recent ones are remembered (bounded).
  let token = k.tokens.get(checkoutToken);
  if (token === undefined) {
    token = crypto.createHmac('sha256', k.key).update(checkoutToken).digest('base64url');
    if (k.tokens.size >= 10_000) k.tokens.clear();
    k.tokens.set(checkoutToken, token);
  }
  return token;
}

export function checkFormToken(masterKey: Buffer, checkoutToken: string, given: unknown): boolean {
  return typeof given === 'string' && timingSafeEqualStr(formTokenFor(masterKey, checkoutToken), given);
}

export type CashierState = 'open' | 'succeeded' | 'closed' | 'expired';

export function stateOf(p: PaymentRow): CashierState {
  if (p.status === 'succeeded') return 'succeeded';
  if (p.status === 'closed') return 'closed';
  return p.expires_at <= nowSeconds() ? 'expired' : 'open';
}

/**
 * The browser is back from the channel: that is never proof of payment, so when the payment is
 * still pending the channel is asked (DESIGN §1) about the attempt the return names, or the
 * newest one. Returns that attempt as it now stands, so the cashier can tell the payer.
 */
export async function confirmOnReturn(deps: Deps, payment: PaymentRow, orderNo?: string): Promise<AttemptRow | undefined> {
  const attempts = await listAttempts(deps.db, payment.id);
  const target = (orderNo && attempts.find((a) => a.channel_order_no === orderNo)) || attempts.at(-1);
  if (!target || target.status !== 'pending' || payment.status !== 'pending') return target;
  try {
    await refreshAttempt(deps, target);
  } catch (err) {
    deps.logger.warn('query on return failed', { payment_id: payment.id, err });
  }
  return findAttempt(deps, payment, target.id);
}

const attemptIdPattern = /^att_[A-Za-z0-9]{1,64}$/;

/** The attempt of this payment that `id` names (a cashier URL's ?attempt=), or undefined. */
export async function findAttempt(deps: Deps, payment: PaymentRow, id: unknown): Promise<AttemptRow | undefined> {
  if (typeof id !== 'string' || !attemptIdPattern.test(id)) return undefined;
  return (await listAttempts(deps.db, payment.id)).find((a) => a.id === id);
}

/** How an attempt stands for the payer: still open at the channel, paid, or over without payment. */
export type AttemptState = 'pending' | 'succeeded' | 'failed';

export function attemptStateOf(a: AttemptRow): AttemptState {
  // 'closing' and 'closed' attempts can no longer be paid, whatever closed them.
  return a.status === 'pending' ? 'pending' : a.status === 'succeeded' ? 'succeeded' : 'failed';
}

/**
 * While a payer watches an attempt (a QR code, or the cashier after coming back unconfirmed), the
 * payment worker asks its channel every few seconds instead of on its slowing schedule: WeChat
 * sends no notify for a failed payment, and a lost notify should not leave the payer waiting.
 * After ten minutes a tab left open is asked every 30 s, so it cannot hammer the channel.
 */
export const WATCHED_QUERY_MS = 5000;
const WATCHED_LATE_QUERY_MS = 30_000;
const WATCHED_FAST_FOR_S = 600;

export function watchAttempt(deps: Deps, attempt: AttemptRow): Promise<void> {
  const late = nowSeconds() - attempt.created > WATCHED_FAST_FOR_S;
  return expediteAttemptQuery(deps.db, attempt.id, Date.now() + (late ? WATCHED_LATE_QUERY_MS : WATCHED_QUERY_MS));
}

/** The line the cashier shows a payer whose attempt did not end in a payment. */
export function attemptNotice(attempt: AttemptRow, t: Messages): { kind: 'failed' | 'pending'; text: string } | undefined {
  const state = attemptStateOf(attempt);
  if (state === 'succeeded') return undefined;
  const text = (state === 'failed' ? t.attempt_failed : t.attempt_pending).replace('{channel}', t[attempt.channel]);
  return { kind: state, text };
}

/** The merchant's return_url with the payment id added (display only: the merchant confirms via webhook or API). */
export function merchantReturnUrl(payment: PaymentRow): string | undefined {
  if (!payment.return_url) return undefined;
  const u = new URL(payment.return_url);
  u.searchParams.set('payment_id', payment.id);
  u.searchParams.set('out_trade_no', payment.out_trade_no);
  return u.toString();
}
