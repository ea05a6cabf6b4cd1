import type { Deps } from '../deps.ts';
import { isAppCode } from '../channels/types.ts';
import { sqlOf } from '../sql.ts';
import type { PaymentRow } from '../payments/repo.ts';
import { findCustomer, type CustomerRow } from '../customers/repo.ts';
import { formatAmount, messagesFor, type Lang } from './i18n.ts';

/** What the cashier shows of the account system (DESIGN §2.3) for one payment. */
export interface CashierAccounts {
  customer?: CustomerRow;
  /** "Pay with balance" is offered: the payment names a customer in its currency, and is not a top-up nor made for one channel. */
  balance: boolean;
  couponCode?: string;
}

/** Read once per cashier request, and only for payments that name a customer or hold a coupon. */
export async function cashierAccountsOf(deps: Deps, payment: PaymentRow): Promise<CashierAccounts | undefined> {
  if (!payment.customer_id && !payment.coupon_id) return undefined;
  const db = sqlOf(deps.db);
  const customer = payment.customer_id ? await findCustomer(db, { appId: payment.app_id, livemode: payment.livemode }, payment.customer_id) : undefined;
  const coupon = payment.coupon_id ? await db.first('select code from coupons where id = ?', [payment.coupon_id]) : undefined;
  // A payment in Huabei installments is Alipay's to take: no balance button.
  const balance = Boolean(customer && payment.purpose !== 'balance_top_up' && !payment.installments && customer.currency === payment.currency && (!payment.channel || isAppCode(payment.channel) || payment.channel === 'balance'));
  return { customer, balance, couponCode: coupon?.code };
}

/** The cashier template's account locals: the balance button, the top-up line, the discount line, the coupon form. */
export function accountLocals(payment: PaymentRow, accounts: CashierAccounts | undefined, lang: Lang) {
  const t = messagesFor(lang);
  const customer = accounts?.customer;
  return {
    balanceOption: accounts?.balance && customer
      ? { balance: customer.balance, enough: customer.balance >= payment.amount, text: t.balance_available.replace('{amount}', formatAmount(customer.balance, customer.currency, lang)) }
      : undefined,
    topUpFor: payment.purpose === 'balance_top_up' && customer ? t.top_up_for.replace('{customer}', customer.name ?? customer.out_user_id ?? customer.id) : undefined,
    discountText: payment.amount_discount > 0
      ? `${t.amount_original_label}${formatAmount(payment.amount_original, payment.currency, lang)} · ${t.coupon_applied.replace('{code}', accounts?.couponCode ?? '').replace('{amount}', formatAmount(payment.amount_discount, payment.currency, lang))}`
      : undefined,
    couponEntry: payment.allow_coupon_code && payment.coupon_entry_open && !payment.coupon_id && payment.purpose !== 'balance_top_up',
  };
}
