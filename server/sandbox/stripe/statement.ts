/**
 * The Stripe simulator's balance transactions: GET /v1/balance_transactions (created[gte|gt|lt|
 * lte], limit, starting_after, expand[]=data.source) lists one `charge` per paid session and one
 * `refund` per succeeded refund, newest first, as Stripe does. The fee is the simulator's fixed
 * 0.6% of a charge (fee_details one stripe_fee); a refund's fee is 0 (Stripe keeps the fee).
 * Format: channels/stripe/statement.ts. Differences from Stripe: the settlement currency is the
 * charge's own (no conversion, exchange_rate null), funds are available at once (status
 * available, available_on = created), there are no payouts, Stripe fees or adjustments, and
 * only the type, payout and currency filters of Stripe are left out.
 */
import type { SandboxDeps } from '../types.ts';
import { parseJson } from '../../db.ts';
import { sandboxFee } from '../statement-token.ts';
import type { StripeRefund, StripeSession } from './store.ts';
import { findSession } from './store.ts';
import { chargeObject, expansions, refundObject } from './objects.ts';
import { invalidParam, type Params } from './wire.ts';

interface Line {
  id: string;
  created: number;
  body: (expandSource: boolean) => Record<string, unknown>;
}

/** The list handler (mounted by api.ts inside Stripe's auth, version and parameter layer). */
export async function listBalanceTransactions(ctx: { deps: SandboxDeps; account: { id: string }; params: Params }): Promise<{ body: unknown }> {
  const p = ctx.params;
  const created = p.obj('created');
  const range = { gte: created?.int('gte'), gt: created?.int('gt'), lt: created?.int('lt'), lte: created?.int('lte') };
  created?.rejectUnknown();
  const limit = p.int('limit', { min: 1, max: 100 }) ?? 10;
  const startingAfter = p.str('starting_after');
  const expand = expansions(p.strings('expand'), ['data.source']);
  p.rejectUnknown();
  const from = Math.max(range.gte ?? -Infinity, range.gt !== undefined ? range.gt + 1 : -Infinity);
  const to = Math.min(range.lt ?? Infinity, range.lte !== undefined ? range.lte + 1 : Infinity);

  const { db } = ctx.deps;
  // A charge follows its session within the session's life (at most a day); a week back covers it.
  let orders = db('sandbox_orders').where({ provider: 'stripe', merchant_id: ctx.account.id });
  if (Number.isFinite(from)) orders = orders.where('created', '>=', from - 7 * 86_400);
  if (Number.isFinite(to)) orders = orders.where('created', '<', to);
  const lines: Line[] = [];
  for (const row of await orders.select('out_trade_no')) {
    const s = (await findSession(db, ctx.account.id, row.out_trade_no))!;
    const d = s.data;
    if (d.piStatus !== 'succeeded' || !d.chargeId || d.chargeCreated === undefined || d.chargeCreated < from || d.chargeCreated >= to) continue;
    const fee = sandboxFee(d.amountTotal);
    lines.push({
      id: `txn_${d.chargeId.slice(3)}`, created: d.chargeCreated,
      body: (x) => balanceTransaction(s, `txn_${d.chargeId!.slice(3)}`, d.chargeCreated!, 'charge', d.amountTotal, fee, x ? chargeObject(s) : d.chargeId!),
    });
  }
  let refunds = db('sandbox_refunds').where({ provider: 'stripe', merchant_id: ctx.account.id, status: 'succeeded' });
  if (Number.isFinite(from)) refunds = refunds.where('created', '>=', from);
  if (Number.isFinite(to)) refunds = refunds.where('created', '<', to);
  for (const r of await refunds.select('out_trade_no', 'refund_no', 'amount', 'status', 'data', 'created')) {
    const s = await findSession(db, ctx.account.id, r.out_trade_no);
    if (!s) continue;
    const rd = parseJson<{ created: number; metadata: Record<string, string> }>(r.data, { created: Number(r.created), metadata: {} });
    const refund: StripeRefund = { id: r.refund_no, sessionId: s.id, amount: Number(r.amount), status: r.status, created: rd.created, metadata: rd.metadata };
    const id = `txn_${refund.id.slice(3)}`;
    lines.push({ id, created: refund.created, body: (x) => balanceTransaction(s, id, refund.created, 'refund', -refund.amount, 0, x ? refundObject(s, refund) : refund.id) });
  }
  lines.sort((a, b) => b.created - a.created || (a.id < b.id ? 1 : -1));
  let at = 0;
  if (startingAfter) {
    at = lines.findIndex((l) => l.id === startingAfter) + 1;
    if (at === 0) throw invalidParam('starting_after', `No such balance transaction: '${startingAfter.slice(0, 60)}'`, 'resource_missing');
  }
  const page = lines.slice(at, at + limit);
  return { body: { object: 'list', data: page.map((l) => l.body(expand.has('data.source'))), has_more: at + limit < lines.length, url: '/v1/balance_transactions' } };
}

function balanceTransaction(s: StripeSession, id: string, created: number, type: 'charge' | 'refund', amount: number, fee: number, source: unknown): Record<string, unknown> {
  const currency = s.data.currency;
  return {
    id, object: 'balance_transaction', amount, available_on: created, created, currency, description: type === 'charge' ? (s.data.piDescription ?? null) : 'REFUND FOR CHARGE',
    exchange_rate: null, fee, fee_details: fee ? [{ amount: fee, application: null, currency, description: 'Stripe processing fees', type: 'stripe_fee' }] : [],
    net: amount - fee, reporting_category: type, source, status: 'available', type,
  };
}
