/**
 * Huabei installments (花呗分期) at the Alipay simulator: the extend_params a pay request
 * (page.pay, wap.pay, precreate, app.pay) may carry, checked as Alipay does, and the
 * hb_fq_pay_info its query and notify report once such a trade is paid. Notes:
 * protocols/recurring.md §3.1.
 */
import { fenToYuan } from '../../channels/alipay/transform.ts';

/** What a trade keeps of its installments (OrderData.installments). */
export interface TradeInstallments {
  /** hb_fq_num: 3, 6 or 12. */
  count: number;
  /** hb_fq_seller_percent: 0 (the buyer pays the fee) or 100 (the merchant does). */
  sellerPercent: number;
}

/** Alipay advises installment trades of at least 100 yuan (developer.aliyun.com/article/710927). */
export const MIN_INSTALLMENT_FEN = 10_000;

export type InstallmentsRead = { ok: true; installments?: TradeInstallments } | { ok: false; what: string };

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);

/**
 * Reads extend_params.hb_fq_num / hb_fq_seller_percent of a pay request. Alipay takes both or
 * neither; hb_fq_num only "3", "6" or "12", hb_fq_seller_percent only "0" or "100" ("其他期数暂不
 *支持，传入会报错"); and, the simulator holding to Alipay's advice, 100 yuan or more. A refusal
 * says what is wrong; Alipay answers these with ACQ.INVALID_PARAMETER (参数无效): no sub_code of
 * its own for an amount under 100 yuan is published, so that one is ACQ.INVALID_PARAMETER too.
 */
export function readInstallments(biz: Record<string, unknown>, amount: number): InstallmentsRead {
  const ext = biz.extend_params;
  if (ext === undefined || ext === null) return { ok: true };
  if (typeof ext !== 'object' || Array.isArray(ext)) return { ok: false, what: 'extend_params must be a JSON object' };
  const e = ext as Record<string, unknown>;
  const num = text(e.hb_fq_num);
  const percent = text(e.hb_fq_seller_percent);
  if (num === undefined && percent === undefined) return { ok: true };
  if (num === undefined || percent === undefined) return { ok: false, what: 'extend_params: hb_fq_num and hb_fq_seller_percent are passed together' };
  if (!['3', '6', '12'].includes(num)) return { ok: false, what: 'extend_params.hb_fq_num: 3, 6 or 12' };
  if (percent !== '0' && percent !== '100') return { ok: false, what: 'extend_params.hb_fq_seller_percent: 0 or 100' };
  if (amount < MIN_INSTALLMENT_FEN) return { ok: false, what: '花呗分期交易金额需大于等于100元 (total_amount of a Huabei installment trade: at least 100.00)' };
  return { ok: true, installments: { count: Number(num), sellerPercent: Number(percent) } };
}

/**
 * hb_fq_pay_info of a paid installment trade: the periods the buyer took and the amount paid by
 * installments, yuan (HbFqPayInfo: user_install_num, fq_amount). Alipay returns it to merchants
 * that agreed on it with Alipay ("商家需与支付宝约定后才返回本参数"); the simulator always does.
 */
export function hbFqPayInfo(installments: TradeInstallments | undefined, amount: number): { user_install_num: string; fq_amount: string } | undefined {
  return installments ? { user_install_num: String(installments.count), fq_amount: fenToYuan(amount) } : undefined;
}
