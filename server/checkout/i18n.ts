import { minorUnits, toDecimalString } from '../payments/currencies.ts';
/** The cashier's two languages; ?lang= wins, then Accept-Language, then zh-CN. */
export type Lang = 'zh-CN' | 'en';

const zh = {
  title: '收银台',
  pay_to: '付款给',
  amount: '金额',
  subject: '商品',
  subject_label: '商品：',
  expires_in: '剩余支付时间',
  expires_in_label: '剩余支付时间：',
  /** A countdown of a day or more: "{n}" is the number of days. */
  days: '{n}天',
  choose: '选择支付方式',
  pay_now: '立即支付',
  no_channels: '当前环境没有可用的支付方式。',
  paid_title: '支付成功',
  paid_body: '这笔订单已经支付成功。',
  closed_title: '订单已关闭',
  closed_body: '这笔订单已关闭，无法继续支付。',
  expired_title: '订单已过期',
  expired_body: '这笔订单已超过支付时间，请回到商户重新下单。',
  /** Back at the cashier from an attempt that ended unpaid ("{channel}" is its name). */
  attempt_failed: '{channel}：付款未成功，这次付款已关闭。请重新选择支付方式。',
  /** Back at the cashier from an attempt the channel has not confirmed (cancelled, or paid and not yet confirmed). */
  attempt_pending: '{channel}：付款尚未完成。如果您已付款，确认后本页会自动跳转；也可以重新选择支付方式。',
  inapp_cancelled: '您已取消付款。可以再次付款，或选择其他支付方式。',
  back_to_merchant: '返回商户',
  not_found_title: '找不到这笔订单',
  not_found_body: '链接可能已失效。',
  /** "{reason}" is the channel's own message, which may be in either language. */
  declined: '支付渠道拒绝了这次支付：{reason}。请重试或换一种支付方式。',
  test_mode: '测试模式：不会产生真实扣款',
  channel_unavailable: '该支付方式暂不可用。',
  language: 'English',
  open_in_browser_title: '使用支付宝付款',
  open_in_browser: '微信内无法使用支付宝。请点击右上角「···」，选择「在浏览器打开」后继续付款。',
  scan_hint: '请使用手机扫描二维码完成付款',
  qr_renewing: '二维码已过期，正在刷新…',
  waiting: '等待付款…',
  qr_code: '付款二维码',
  /** Beside the channel choice on a desktop: the checkout's own QR code (聚合码), by the wallets that pay it inside. */
  wallet_qr_both: '用微信或支付宝扫码',
  wallet_qr_wechat: '用微信扫码',
  wallet_qr_alipay: '用支付宝扫码',
  sandbox_scan: '沙箱：模拟手机扫码',
  sandbox_pay: '立即支付（沙箱）',
  alipay_pc: '支付宝',
  alipay_wap: '支付宝',
  alipay_qr: '支付宝扫码',
  alipay_app: '支付宝',
  alipay_agreement: '支付宝自动扣款',
  wechat_papay: '微信委托代扣',
  wechat_native: '微信支付扫码',
  wechat_h5: '微信支付',
  wechat_jsapi: '微信支付',
  wechat_app: '微信支付',
  unionpay_pc: '银联在线支付',
  unionpay_wap: '银联在线支付',
  paypal: 'PayPal',
  card: '银行卡（Visa / Mastercard）',
  apple_pay: 'Apple Pay',
  balance: '余额支付',
  balance_available: '可用余额：{amount}',
  balance_too_low: '余额不足',
  top_up_for: '充值到账户：{customer}',
  coupon_label: '优惠码',
  coupon_apply: '使用',
  coupon_applied: '优惠码 {code}：已减 {amount}',
  coupon_refused: '这个优惠码不能用于这笔订单。',
  amount_original_label: '原价：',
  /** Huabei installments (花呗分期): "{n}" periods, "{fee}" the fee, "{rate}" its rate, "{i}" a period's number. */
  installments_title: '花呗分期 {n} 期',
  installments_fee_customer: '分期手续费 {fee}（费率 {rate}，由您承担）',
  installments_fee_merchant: '免息：分期手续费由商户承担',
  installment_period: '第 {i} 期 {amount}（含手续费 {fee}）',
  installment_period_free: '第 {i} 期 {amount}',
  installments_total: '分期应还总额 {total}',
};

const en: typeof zh = {
  title: 'Checkout',
  pay_to: 'Pay to',
  amount: 'Amount',
  subject: 'Item',
  subject_label: 'Item: ',
  expires_in: 'Time left to pay',
  expires_in_label: 'Time left to pay: ',
  days: '{n}d',
  choose: 'Choose a payment method',
  pay_now: 'Pay now',
  no_channels: 'No payment method works here.',
  paid_title: 'Payment complete',
  paid_body: 'This order has been paid.',
  closed_title: 'Order closed',
  closed_body: 'This order is closed and can no longer be paid.',
  expired_title: 'Order expired',
  expired_body: 'The time to pay this order has run out. Please place the order again at the merchant.',
  attempt_failed: 'The payment with {channel} did not go through and is closed. Please choose a payment method to try again.',
  attempt_pending: 'The payment with {channel} is not complete. If you have paid, this page moves on once it is confirmed; otherwise choose a method again.',
  inapp_cancelled: 'You cancelled the payment. Pay again, or choose another method.',
  back_to_merchant: 'Back to the merchant',
  not_found_title: 'Order not found',
  not_found_body: 'The link may have expired.',
  declined: 'The payment channel declined this payment: {reason}. Please try again or choose another method.',
  test_mode: 'Test mode: no real money moves',
  channel_unavailable: 'This payment method is not available.',
  language: '中文',
  open_in_browser_title: 'Pay with Alipay',
  open_in_browser: 'Alipay cannot be used inside WeChat. Tap “···” at the top right and choose “Open in browser” to continue.',
  scan_hint: 'Scan the QR code with your phone to pay',
  qr_renewing: 'The QR code expired; getting a new one…',
  waiting: 'Waiting for payment…',
  qr_code: 'Payment QR code',
  wallet_qr_both: 'Scan with WeChat or Alipay',
  wallet_qr_wechat: 'Scan with WeChat',
  wallet_qr_alipay: 'Scan with Alipay',
  sandbox_scan: 'Sandbox: scan with a phone',
  sandbox_pay: 'Pay now (sandbox)',
  alipay_pc: 'Alipay',
  alipay_wap: 'Alipay',
  alipay_qr: 'Alipay QR code',
  alipay_app: 'Alipay',
  alipay_agreement: 'Alipay auto-debit',
  wechat_papay: 'WeChat Pay auto-debit',
  wechat_native: 'WeChat Pay QR code',
  wechat_h5: 'WeChat Pay',
  wechat_jsapi: 'WeChat Pay',
  wechat_app: 'WeChat Pay',
  unionpay_pc: 'UnionPay',
  unionpay_wap: 'UnionPay',
  paypal: 'PayPal',
  card: 'Card (Visa / Mastercard)',
  apple_pay: 'Apple Pay',
  balance: 'Pay with balance',
  balance_available: 'Available balance: {amount}',
  balance_too_low: 'Balance too low',
  top_up_for: 'Top-up for account: {customer}',
  coupon_label: 'Coupon code',
  coupon_apply: 'Apply',
  coupon_applied: 'Coupon {code}: {amount} off',
  coupon_refused: 'This coupon code cannot be used for this order.',
  amount_original_label: 'Original price: ',
  installments_title: 'Huabei installments: {n} periods',
  installments_fee_customer: 'Installment fee {fee} ({rate}, paid by you)',
  installments_fee_merchant: 'Interest-free: the merchant pays the installment fee',
  installment_period: 'Period {i}: {amount} (fee {fee} included)',
  installment_period_free: 'Period {i}: {amount}',
  installments_total: 'Total over the periods: {total}',
};

export type Messages = typeof zh;
const dictionaries: Record<Lang, Messages> = { 'zh-CN': zh, en };

export function pickLang(queryLang: unknown, acceptLanguage: string | undefined): Lang {
  if (queryLang === 'en' || queryLang === 'zh-CN') return queryLang;
  return negotiateLang(acceptLanguage, 'zh-CN');
}

/**
 * The reader's language from Accept-Language, shared by the cashier and the console: the first
 * tag decides (en, en-US… → en; zh, zh-CN, zh-Hans… → zh-CN); any other language gets the
 * caller's default (zh-CN at the cashier, English in the console).
 */
export function negotiateLang(acceptLanguage: string | undefined, fallback: Lang): Lang {
  const first = (acceptLanguage ?? '').split(',')[0]?.split(';')[0]?.trim().toLowerCase() ?? '';
  if (first === 'en' || first.startsWith('en-')) return 'en';
  if (first === 'zh' || first.startsWith('zh-')) return 'zh-CN';
  return fallback;
}

export const messagesFor = (lang: Lang): Messages => dictionaries[lang];

/** A channel's decline in the payer's language; the channel's own closing punctuation gives way to ours. */
export function declinedText(t: Pick<Messages, 'declined'>, reason: string): string {
  return t.declined.replace('{reason}', reason.trim().replace(/[\s.。!！]+$/u, ''));
}

/**
 * Time left as "m:ss", "h:mm:ss" from an hour, "{n}d h:mm:ss" from a day (a payment may stay
 * open 15 days). public/assets/cashier.js ticks the same format; test/unit/i18n.test.ts and the
 * browser test hold both to it.
 */
export function formatCountdown(seconds: number, t: Pick<Messages, 'days'>): string {
  const left = Math.max(0, Math.floor(seconds));
  const days = Math.floor(left / 86400);
  const h = Math.floor((left % 86400) / 3600);
  const m = Math.floor((left % 3600) / 60);
  const ss = String(left % 60).padStart(2, '0');
  const clock = days || h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
  return days ? `${t.days.replace('{n}', String(days))} ${clock}` : clock;
}

/**
 * "¥1,234.56" from 123456 fen, "US$12.34" or "$12.34" by the reader's language; only display code
 * formats money. The decimals are the currency's ISO exponent (CLDR would show HUF without
 * any), and the amount goes to Intl as an exact decimal string, never as a float.
 */
export function formatAmount(amount: number, currency: string, lang: Lang = 'zh-CN'): string {
  const exp = minorUnits(currency);
  return formatterFor(lang, currency, exp).format(toDecimalString(amount, currency) as unknown as number);
}

const formatters = new Map<string, Intl.NumberFormat>();
function formatterFor(lang: Lang, currency: string, exp: number): Intl.NumberFormat {
  const key = `${lang}:${currency}`;
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.NumberFormat(lang, { style: 'currency', currency, minimumFractionDigits: exp, maximumFractionDigits: exp });
    formatters.set(key, f);
  }
  return f;
}
