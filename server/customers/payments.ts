import type { AuthContext, Deps } from '../deps.ts';
import { MIN_INSTALLMENT_AMOUNT } from '../payments/installments.ts';
import { nowSeconds } from '../crypto.ts';
import { invalid, notFound } from '../errors.ts';
import { insertEvent } from '../events/repo.ts';
import { sqlOf, transaction, type Sql } from '../sql.ts';
import { deliveriesNeedClaim } from '../webhooks/handoff.ts';
import { closeSiblingAttempts, isUniqueViolation, paymentFromRow, type PaymentRow } from '../payments/repo.ts';
import type { CreatePaymentInput } from '../payments/validation.ts';
import { findCouponByIdOrCode, redeemCoupon, type CouponRow } from '../coupons/repo.ts';
import { couponCustomerLimit, couponExhausted, discountFor } from '../coupons/service.ts';
import { creditBalance, debitBalance, debitForPayment, findCustomer, type CustomerRow } from './repo.ts';
import { balanceInsufficient } from './service.ts';
import { groupCommitFor } from './group-commit.ts';
import { isPostgres } from '../db.ts';

/**
 * How the account system (DESIGN §2.3) shapes a payment: its customer, its coupon and discount,
 * top-ups and payments from the balance. The payments service calls these; the ledger entries
 * and coupon uses are written in the payment's own transactions.
 */

export interface AccountTerms {
  /** The payment's customer; for channel balance only its id, which the debit checks (createBalancePayment). */
  customer: Pick<CustomerRow, 'id'> | null;
  coupon: CouponRow | null;
  amountOriginal: number;
  discount: number;
}

const currencyMismatch = (balanceCurrency: string, currency: string) =>
  invalid('currency_mismatch', `The customer's balance is in ${balanceCurrency}; this payment is in ${currency}.`, 'currency');

/** Checks customer, purpose and coupon of a new payment before anything is stored; each refusal names its parameter. */
export async function accountTermsFor(deps: Deps, auth: AuthContext, input: CreatePaymentInput): Promise<AccountTerms> {
  const db = sqlOf(deps.db);
  const topUp = input.purpose === 'balance_top_up';
  const balance = input.channel === 'balance';
  if ((topUp || balance) && !input.customer) {
    throw invalid('parameter_missing', `customer is required ${topUp ? 'for a balance top-up' : 'with channel balance'}: the customer whose balance it ${topUp ? 'credits' : 'debits'}.`, 'customer');
  }
  if (topUp && balance) throw invalid('parameter_invalid', 'A balance top-up cannot be paid with the balance.', 'channel');
  if (topUp && input.coupon) throw invalid('parameter_invalid', 'A balance top-up takes no coupon: the balance is credited with what is paid.', 'coupon');
  if (topUp && input.allow_coupon_code) throw invalid('parameter_invalid', 'A balance top-up takes no coupon code.', 'allow_coupon_code');
  let customer: Pick<CustomerRow, 'id'> | undefined;
  // With channel balance the debit itself checks the customer (createBalancePayment): no read first.
  if (input.customer && balance) customer = { id: input.customer };
  else if (input.customer) {
    const found = await findCustomer(db, auth, input.customer);
    if (!found) throw notFound('customer', input.customer, 'customer');
    if (topUp && found.currency !== input.currency) throw currencyMismatch(found.currency, input.currency);
    customer = found;
  }
  let coupon: CouponRow | undefined;
  let discount = 0;
  if (input.coupon) {
    coupon = await findCouponByIdOrCode(db, auth, input.coupon);
    if (!coupon) throw notFound('coupon', input.coupon, 'coupon');
    discount = discountFor(coupon, input.amount, input.currency);
    if (coupon.per_customer_limit !== null && !customer) {
      throw invalid('parameter_missing', `customer is required with coupon ${coupon.code}: it is limited per customer.`, 'customer');
    }
  }
  return { customer: customer ?? null, coupon: coupon ?? null, amountOriginal: input.amount, discount };
}

/** Counts the coupon's use for this payment, or throws the 400 that rolls the transaction back. */
async function redeemFor(tx: Sql, coupon: CouponRow, paymentId: string, customerId: string | null): Promise<void> {
  const outcome = await redeemCoupon(tx, coupon, { paymentId, customerId, now: nowSeconds() });
  if (outcome === 'exhausted') throw couponExhausted(coupon);
  if (outcome === 'customer_limit') throw couponCustomerLimit(coupon);
}

const outTradeNoTaken = (no: string) => invalid('out_trade_no_taken', `A payment with out_trade_no '${no}' already exists for this app.`, 'out_trade_no');

/** Stores a new pending payment that holds a coupon: the use is counted in the same transaction (limits hold under concurrency). */
export async function insertPaymentWithCoupon(deps: Deps, row: Record<string, any>, coupon: CouponRow): Promise<void> {
  try {
    await transaction(deps.db, async (tx) => {
      await redeemFor(tx, coupon, row.id, row.customer_id);
      await tx.insert('payments', row);
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw outTradeNoTaken(row.out_trade_no);
    throw err;
  }
}

/**
 * A new payment with channel balance: it succeeds at once, or nothing is stored. The conditional
 * debit, the coupon's use, the payment (succeeded), its ledger entry and payment.succeeded are one
 * transaction; a balance too low is a 402 balance_insufficient, as Stripe refuses a create whose
 * charge fails.
 */
export async function createBalancePayment<O extends Record<string, unknown>>(deps: Deps, row: Record<string, any>, coupon: CouponRow | null, toObject: (p: PaymentRow) => O): Promise<O> {
  // The object is built once: the event carries it, and it is the answer (nothing changes it after the commit).
  let object: O | undefined;
  const paid = { ...row, status: 'succeeded', channel: 'balance', paid_at: nowSeconds(), next_action_attempt_id: null, coupon_entry_open: false };
  let wake = true;
  const pay = async (tx: Sql) => {
    // The debit first: a refused payment then costs one statement, and its event (last) is only written for a payment that stays.
    const debited = await debitForPayment(tx, { appId: row.app_id, livemode: row.livemode }, row.currency, {
      customerId: row.customer_id, type: 'payment', amount: row.amount, source: row.id, description: row.subject,
    });
    if ('refused' in debited) {
      if (debited.refused === 'unknown') throw notFound('customer', row.customer_id, 'customer');
      if (debited.refused === 'currency') throw currencyMismatch(debited.customer.currency, row.currency);
      throw balanceInsufficient('customer');
    }
    if (coupon) await redeemFor(tx, coupon, row.id, row.customer_id);
    await tx.insert('payments', paid);
    object = toObject(paymentFromRow(paid));
    await insertEvent(tx, { appId: row.app_id, livemode: row.livemode, type: 'payment.succeeded', object });
    wake = deliveriesNeedClaim(tx);
  };
  try {
    // SQLite: concurrent balance payments share a commit (group-commit.ts); PostgreSQL: a transaction each.
    await (isPostgres(deps.db) ? transaction(deps.db, pay) : groupCommitFor(deps.db).run(pay));
  } catch (err) {
    if (isUniqueViolation(err)) throw outTradeNoTaken(row.out_trade_no);
    throw err;
  }
  await publish(deps, row.id, wake);
  return object!;
}

/**
 * A pending payment paid from its customer's balance (confirm with channel balance, or the
 * cashier's button). The payment row is taken first (its amount may have just changed by a
 * coupon), then the balance debited; either failing rolls both back. Orders placed at channels
 * meanwhile are closed like a losing attempt's; one paid anyway is refunded automatically.
 */
export async function payPendingWithBalance(deps: Deps, payment: PaymentRow, toObject: (p: PaymentRow) => Record<string, unknown>): Promise<PaymentRow> {
  if (!payment.customer_id) throw invalid('parameter_invalid', 'Only a payment that names a customer can be paid with the balance.', 'channel');
  if (payment.purpose === 'balance_top_up') throw invalid('parameter_invalid', 'A balance top-up cannot be paid with the balance.', 'channel');
  const customer = await findCustomer(sqlOf(deps.db), { appId: payment.app_id, livemode: payment.livemode }, payment.customer_id);
  if (!customer) throw invalid('parameter_invalid', 'The customer of this payment has been deleted.', 'channel');
  if (customer.currency !== payment.currency) {
    throw invalid('currency_mismatch', `The customer's balance is in ${customer.currency}; this payment is in ${payment.currency}.`, 'channel');
  }
  let wake = true;
  const won = await transaction(deps.db, async (tx) => {
    const nowMs = Date.now();
    const r = await tx.first(
      `update payments set status = 'succeeded', channel = 'balance', channel_trade_no = null, paid_at = ?, updated_ms = ?, next_action = null,
         next_action_attempt_id = null, last_attempt_error = null, coupon_entry_open = ? where id = ? and status = 'pending' returning *`,
      [nowSeconds(), nowMs, false, payment.id],
    );
    if (!r) throw invalid('payment_unexpected_state', 'This payment is not pending any more.', 'id');
    const p = paymentFromRow(r);
    const debited = await debitBalance(tx, { customerId: customer.id, type: 'payment', amount: p.amount, source: p.id, description: p.subject });
    if (!debited) throw balanceInsufficient('customer');
    await closeSiblingAttempts(tx, p.id, '', nowMs);
    await insertEvent(tx, { appId: p.app_id, livemode: p.livemode, type: 'payment.succeeded', object: toObject(p) });
    wake = deliveriesNeedClaim(tx);
    return p;
  });
  await publish(deps, payment.id, wake);
  return won;
}

async function publish(deps: Deps, paymentId: string, wakeWorkers: boolean): Promise<void> {
  await deps.bus.publish(`payment:${paymentId}`, 'succeeded');
  if (wakeWorkers) await deps.bus.publish('webhooks', paymentId);
}

/** A top-up succeeded: the balance is credited in the success's own transaction (payments/service.ts applyAttemptOutcome). */
export async function creditTopUp(tx: Sql, won: PaymentRow): Promise<void> {
  if (won.purpose !== 'balance_top_up' || !won.customer_id) return;
  await creditBalance(tx, { customerId: won.customer_id, type: 'top_up', amount: won.amount, source: won.id, description: won.subject });
}

/**
 * The payer typed a coupon code on the cashier: the payment is re-priced, and the use counted, in
 * one transaction, while no channel order exists (startAttempt closes coupon_entry_open on the
 * same row before placing one, so the two cannot cross). Throws the 400 naming `coupon`.
 */
export async function applyCouponCode(deps: Deps, payment: PaymentRow, code: string): Promise<PaymentRow> {
  if (!payment.allow_coupon_code) throw invalid('parameter_invalid', 'This payment does not take coupon codes.', 'coupon');
  const coupon = await findCouponByIdOrCode(sqlOf(deps.db), { appId: payment.app_id, livemode: payment.livemode }, code);
  if (!coupon || coupon.id.toLowerCase() === code.toLowerCase()) throw invalid('coupon_unknown', 'No such coupon code.', 'coupon');
  if (coupon.per_customer_limit !== null && !payment.customer_id) throw invalid('coupon_customer_required', `Coupon ${coupon.code} is limited per customer.`, 'coupon');
  const discount = discountFor(coupon, payment.amount_original, payment.currency);
  // Huabei takes installments from ¥100: a code may not take the payment below it.
  if (payment.installments && payment.amount_original - discount < MIN_INSTALLMENT_AMOUNT) {
    throw invalid('coupon_not_applicable', `Coupon ${coupon.code} would take this installment payment below ¥${MIN_INSTALLMENT_AMOUNT / 100} (Huabei's minimum).`, 'coupon');
  }
  return transaction(deps.db, async (tx) => {
    const r = await tx.first(
      `update payments set amount = amount_original - ?, amount_discount = ?, coupon_id = ?, updated_ms = ?
       where id = ? and status = 'pending' and coupon_entry_open = ? and coupon_id is null returning *`,
      [discount, discount, coupon.id, Date.now(), payment.id, true],
    );
    if (!r) throw invalid('coupon_not_applicable', 'A coupon can no longer be applied to this payment: one is applied already, or a payment method was chosen.', 'coupon');
    await redeemFor(tx, coupon, payment.id, payment.customer_id);
    return paymentFromRow(r);
  });
}

/** startAttempt's first step for a payment that takes codes: closes the entry and reads the amount the order is placed for. */
export async function closeCouponEntry(deps: Deps, payment: PaymentRow): Promise<PaymentRow> {
  if (!payment.coupon_entry_open) return payment;
  const r = await sqlOf(deps.db).first('update payments set coupon_entry_open = ?, updated_ms = ? where id = ? and coupon_entry_open = ? returning *', [false, Date.now(), payment.id, true]);
  if (!r) return paymentFromRow(await sqlOf(deps.db).first('select * from payments where id = ?', [payment.id]));
  // Cached cashier pages of this payment still show the code form: they drop it on this message.
  await deps.bus.publish(`payment:${payment.id}`, 'pending');
  return paymentFromRow(r);
}
