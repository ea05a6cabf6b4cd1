/**
 * Stripe statements: the balance transactions of the Beijing day, GET /v1/balance_transactions?
 * created[gte]&created[lt]&limit=100&expand[]=data.source through the SDK (auto-pagination on
 * starting_after), kept as one list answer. Each has type (charge and payment are money in,
 * refund and payment_refund money back), amount, fee and net in the balance's settlement
 * currency, and its source: the charge (payment_intent, metadata copied from the PaymentIntent,
 * where createPayment put order_no) or the refund (metadata refund_no and order_no, refund()).
 * The amount matched is the source's own (the currency the buyer paid), the fee the balance
 * transaction's (converted at the line's rate when it settled in another currency). Stripe keeps its fee when a payment is refunded (the refund's fee is 0).
 * Sources: docs.stripe.com/api/balance_transactions/list and /object (type, reporting_category,
 * fee_details, source), /expand (data.source), and /reports/balance-transaction-types.
 */
import { MalformedMessageError } from '../../errors.ts';
import type { ParsedStatement, StatementChannel, StatementRow } from '../statements.ts';
import { call, type StripeCredentials } from './index.ts';
import { fromStripeAmount, isoCurrency } from './transform.ts';

const MAX_ITEMS = 50_000;

export const stripeStatements: StatementChannel<StripeCredentials> = {
  provider: 'stripe',
  kinds: ['trade'],

  async fetchStatement(cred, date) {
    // The Beijing day [00:00, 24:00) in unix seconds.
    const start = Date.parse(`${date}T00:00:00+08:00`) / 1000;
    const end = start + 86_400;
    const data = await call('balanceTransactions.list', async (s) => {
      const out: unknown[] = [];
      for await (const bt of s.balanceTransactions.list({ created: { gte: start, lt: end }, limit: 100, expand: ['data.source'] })) {
        out.push(bt);
        if (out.length > MAX_ITEMS) throw new MalformedMessageError(`more than ${MAX_ITEMS} balance transactions in a day`);
      }
      return out;
    }, cred);
    const body = Buffer.from(JSON.stringify({ object: 'list', data, has_more: false, url: '/v1/balance_transactions' }));
    return { status: 'fetched', file: { kind: 'trade', fileName: `stripe_balance_transactions_${date.replace(/-/g, '')}.json`, body } };
  },

  parseStatement(body) {
    return parseBalanceTransactions(body);
  },
};

interface SourceShape {
  id?: unknown;
  object?: unknown;
  amount?: unknown;
  currency?: unknown;
  payment_intent?: unknown;
  metadata?: Record<string, unknown> | null;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Stripe units of a currency → our minor units (ISO); a non-integer is malformed. */
function minor(v: unknown, currency: string, where: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new MalformedMessageError(`${where}: not an integer amount`);
  return fromStripeAmount(v, currency);
}

const PAYMENT_TYPES = new Set(['charge', 'payment']);
const REFUND_TYPES = new Set(['refund', 'payment_refund']);

/** Reads a balance transaction list (one page or the day as fetched) into rows. */
export function parseBalanceTransactions(body: Buffer): ParsedStatement {
  let doc: { object?: unknown; data?: unknown };
  try {
    doc = JSON.parse(body.toString('utf8').replace(/^\uFEFF/, ''));
  } catch {
    throw new MalformedMessageError('not JSON: a Stripe statement is the balance transactions list (GET /v1/balance_transactions)');
  }
  if (!doc || doc.object !== 'list' || !Array.isArray(doc.data)) throw new MalformedMessageError('not a Stripe list of balance transactions (object "list" with data)');
  const rows: StatementRow[] = [];
  doc.data.forEach((item: unknown, i: number) => {
    const where = `data[${i}]`;
    const bt = item as Record<string, unknown> | null;
    if (!bt || bt.object !== 'balance_transaction') throw new MalformedMessageError(`${where}: not a balance_transaction`);
    const type = str(bt.type);
    const isPayment = PAYMENT_TYPES.has(type);
    if (!isPayment && !REFUND_TYPES.has(type)) return; // payouts, Stripe fees, adjustments, transfers: no payment of ours
    const btCurrency = isoCurrency(str(bt.currency));
    const source = (typeof bt.source === 'object' && bt.source ? bt.source : { id: bt.source }) as SourceShape;
    const meta = source.metadata ?? {};
    const currency = typeof source.currency === 'string' ? isoCurrency(source.currency) : btCurrency;
    const amount = typeof source.amount === 'number' ? minor(source.amount, currency, `${where}.source.amount`) : Math.abs(minor(bt.amount, btCurrency, `${where}.amount`));
    // The fee is in the settlement currency; a line paid in another is given it in the buyer's
    // currency at the line's own rate (amount settled / amount paid), so a day's fees add up per currency.
    const converted = currency !== btCurrency && typeof source.amount === 'number' && typeof bt.amount === 'number' && bt.amount !== 0;
    const feeUnits = converted ? Math.round(((bt.fee as number) ?? 0) * Math.abs(source.amount as number) / Math.abs(bt.amount as number)) : bt.fee ?? 0;
    const fee = minor(feeUnits, converted ? currency : btCurrency, `${where}.fee`);
    const time = typeof bt.created === 'number' ? bt.created : undefined;
    const paymentIntent = str(source.payment_intent);
    // Without the order number (a charge not made by the gateway) the line still shows, under its PaymentIntent or its own id.
    const orderNo = str(meta.order_no) || paymentIntent || str(source.id) || str(bt.id);
    const channelStatus = `${type}/${str(bt.status)}`;
    if (isPayment) {
      rows.push({ type: 'payment', orderNo, channelTradeNo: paymentIntent || undefined, amount, fee, currency, time, channelStatus });
    } else {
      rows.push({
        type: 'refund', orderNo, refundNo: str(meta.refund_no) || undefined, channelTradeNo: paymentIntent || undefined, channelRefundNo: str(source.id) || undefined,
        amount: Math.abs(amount), fee, currency, time, channelStatus,
      });
    }
  });
  return { rows, lineCount: doc.data.length, problems: [] };
}
