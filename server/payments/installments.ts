/**
 * Installments (分期, DESIGN §2.5): Alipay Huabei installments (花呗分期) on a payment. The
 * merchant picks the number of periods and who pays the fee; each attempt passes them to the
 * channel (Alipay: extend_params.hb_fq_num / hb_fq_seller_percent), and the cashier shows what
 * each period costs the customer. Notes: protocols/recurring.md §3.1.
 */
import { z } from 'zod';
import { invalid } from '../errors.ts';
import { providerOf, type ChannelCode } from '../channels/types.ts';

/** Huabei takes 3, 6 or 12 periods, nothing else ("仅支持传入3、6、12"). */
export const INSTALLMENT_COUNTS = [3, 6, 12] as const;
export type InstallmentCount = (typeof INSTALLMENT_COUNTS)[number];
export type FeePayer = 'customer' | 'merchant';

/** As stored on the payment and shown on the payment object. */
export interface Installments {
  count: InstallmentCount;
  fee_payer: FeePayer;
}

/** The codes whose Alipay methods take extend_params.hb_fq_* (page.pay, wap.pay, precreate, app.pay: recurring.md §3.1). */
export const INSTALLMENT_CHANNELS: readonly ChannelCode[] = ['alipay_pc', 'alipay_wap', 'alipay_qr', 'alipay_app'];

/**
 * ¥100.00: Alipay advises installment trades of at least 100 yuan (developer.aliyun.com/article/710927:
 * "交易金额建议大于等于100元"); its own hard minimum is not published, so the gateway holds to the advice.
 */
export const MIN_INSTALLMENT_AMOUNT = 10_000;

export const installmentsSchema = z
  .object({
    count: z.union([z.literal(3), z.literal(6), z.literal(12)], {
      error: (i) => (i.input === undefined ? 'is required' : 'must be 3, 6 or 12 (the periods Huabei offers)'),
    }),
    fee_payer: z.enum(['customer', 'merchant'], {
      error: (i) => (i.input === undefined ? 'is required' : 'must be customer or merchant'),
    }).describe('who pays the installment fee: customer (the periods carry it) or merchant (interest-free for the customer, deducted from the settlement)'),
  })
  .strict()
  .describe('Alipay Huabei installments (花呗分期): the number of periods and who pays the fee; Alipay channels only, amount at least 10000 (¥100)');

/** Parses the stored column (JSON text); anything else is null. */
export function installmentsOf(stored: unknown): Installments | null {
  if (typeof stored !== 'string' || !stored) return null;
  try {
    const parsed = installmentsSchema.safeParse(JSON.parse(stored));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * The checks of a payment with installments, before anything is stored: an Alipay code that
 * takes them (when a channel is named), CNY, and at least ¥100. The 400 names `installments`:
 * the channel, currency and amount are fine by themselves, the installments are what does not fit.
 */
export function checkInstallments(inst: Installments, p: { channel?: ChannelCode | null; currency: string; amount: number }): void {
  if (p.channel && !INSTALLMENT_CHANNELS.includes(p.channel)) {
    throw invalid('parameter_invalid', `installments are Alipay Huabei installments: they need an Alipay channel (${INSTALLMENT_CHANNELS.join(', ')}), not ${p.channel}.`, 'installments');
  }
  if (p.currency !== 'CNY') throw invalid('parameter_invalid', `installments are for CNY payments (Huabei), not ${p.currency}.`, 'installments');
  if (p.amount < MIN_INSTALLMENT_AMOUNT) {
    throw invalid('parameter_invalid', `installments need an amount of at least ${MIN_INSTALLMENT_AMOUNT} (¥100.00): Alipay takes Huabei installments from 100 yuan.`, 'installments');
  }
}

/** Whether a channel can carry a payment's installments (the cashier offers only those). */
export const takesInstallments = (code: ChannelCode): boolean => code !== 'balance' && providerOf(code) === 'alipay' && INSTALLMENT_CHANNELS.includes(code);

/**
 * Huabei's buyer fee rates, in basis points of the principal, for the whole plan: 3 periods 2.3%,
 * 6 periods 4.5%, 12 periods 7.5% (Alipay's published 花呗分期 buyer rates, 买家分期费用计算规则).
 * With fee_payer merchant ("hb_fq_seller_percent":"100") the customer pays none: the merchant's
 * share is taken from its settlement, at the rate its contract says.
 */
export const BUYER_FEE_RATE_BP: Record<InstallmentCount, number> = { 3: 230, 6: 450, 12: 750 };

export interface InstallmentPeriod {
  /** What the customer pays in this period: its share of the principal plus its share of the fee (minor units). */
  amount: number;
  principal: number;
  fee: number;
}

export interface InstallmentPlan {
  count: InstallmentCount;
  feePayer: FeePayer;
  /** The customer's fee for the whole plan (0 when the merchant pays it). */
  totalFee: number;
  /** What the customer pays over the plan: amount + totalFee. */
  total: number;
  periods: InstallmentPeriod[];
}

/**
 * What each period costs the customer, in fen, as Alipay's cashier shows it: per period
 * (principal + fee) / n. The fee is principal × rate, rounded half up to the fen (the published
 * rule gives the rate, not this rounding: an assumption). Principal and fee are each split the way
 * Alipay splits them: every period but the last takes the share rounded down to the fen, the last
 * takes what remains, so the periods add up to the exact totals.
 */
export function installmentPlan(amount: number, inst: Installments): InstallmentPlan {
  if (!Number.isSafeInteger(amount) || amount < 0) throw new RangeError(`amount must be a non-negative integer of minor units, got ${amount}`);
  const n = inst.count;
  const totalFee = inst.fee_payer === 'customer' ? Math.floor((amount * BUYER_FEE_RATE_BP[n] + 5_000) / 10_000) : 0;
  const principals = split(amount, n);
  const fees = split(totalFee, n);
  const periods = principals.map((principal, i) => ({ principal, fee: fees[i]!, amount: principal + fees[i]! }));
  return { count: n, feePayer: inst.fee_payer, totalFee, total: amount + totalFee, periods };
}

/** `total` in `n` shares: n − 1 rounded down, the last one the remainder. */
function split(total: number, n: number): number[] {
  const share = Math.floor(total / n);
  return Array.from({ length: n }, (_, i) => (i < n - 1 ? share : total - share * (n - 1)));
}
