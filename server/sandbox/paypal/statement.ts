/**
 * The PayPal simulator's Transaction Search: GET /v1/reporting/transactions (bearer token, like
 * every REST call) lists the merchant's captures (T0006) and refunds (T1107) initiated within
 * [start_date, end_date], in PayPal's transaction_details shape, with a fixed fee of 0.6% of
 * each capture (fee_amount negative) given back pro rata on a refund (positive). Format:
 * channels/paypal/statement.ts. Differences from PayPal: transactions are listed at once
 * (PayPal lags up to three hours; last_refreshed_datetime is now), only fields=all/
 * transaction_info's fields are honoured (no transaction_type, transaction_status or amount
 * filters), the balances are not kept (ending_balance and available_balance are omitted), and a
 * capture's status maps to S (completed), F (partially refunded), V (fully refunded), P, D.
 */
import type { SandboxDeps } from '../types.ts';
import { parseJson } from '../../db.ts';
import { sandboxFee } from '../statement-token.ts';
import type { CaptureData, CaptureStatus, RefundData, SandboxMerchant } from './store.ts';
import { iso, validationError, valueOf, type Answer } from './wire.ts';

const MAX_RANGE_S = 31 * 86_400;
const STATUS: Record<CaptureStatus, string> = { COMPLETED: 'S', PARTIALLY_REFUNDED: 'F', REFUNDED: 'V', PENDING: 'P', DECLINED: 'D' };
/** A date-time with a Z, ±hh:mm or ±hhmm offset (PayPal's examples use both forms). */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})$/;
const parseTime = (t: string) => Date.parse(t.replace(/([+-]\d{2})(\d{2})$/, '$1:$2')) / 1000;
/** Times as Transaction Search writes them: UTC with a +0000 offset. */
const ppTime = (unix: number) => iso(unix).replace(/Z$/, '+0000');

const signed = (units: number, currency: string) => (units < 0 ? `-${valueOf(-units, currency)}` : valueOf(units, currency));

/** The transactions of a range, one page of them. */
export async function transactionSearch(deps: SandboxDeps, merchant: SandboxMerchant, query: Record<string, unknown>): Promise<Answer> {
  const q = (k: string) => (typeof query[k] === 'string' ? (query[k] as string) : undefined);
  const startText = q('start_date');
  const endText = q('end_date');
  if (!startText || !DATE_TIME.test(startText)) return validationError('start_date', 'INVALID_REQUEST', 'start_date is required, as yyyy-MM-ddTHH:mm:ss±hh:mm.');
  if (!endText || !DATE_TIME.test(endText)) return validationError('end_date', 'INVALID_REQUEST', 'end_date is required, as yyyy-MM-ddTHH:mm:ss±hh:mm.');
  // Whole seconds: the tables keep unix seconds (an end of …59.999 covers its last second).
  const start = Math.ceil(parseTime(startText));
  const end = Math.floor(parseTime(endText));
  if (!(end > start) || end - start > MAX_RANGE_S) return validationError('end_date', 'INVALID_REQUEST', 'The range is at most 31 days and end_date follows start_date.');
  const pageSize = Number(q('page_size') ?? '100');
  const page = Number(q('page') ?? '1');
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 500) return validationError('page_size', 'INVALID_REQUEST', 'page_size is 1 to 500.');
  if (!Number.isInteger(page) || page < 1 || page > 10_000) return validationError('page', 'INVALID_REQUEST', 'page is 1 to 10000.');

  const captures = await deps.db('paypal_sandbox_captures').where({ merchant_id: merchant.merchantId }).where('created', '>=', start).where('created', '<=', end)
    .select('id', 'status', 'amount', 'data');
  const refunds = await deps.db('paypal_sandbox_refunds as r').join('paypal_sandbox_captures as c', 'c.id', 'r.capture_id')
    .where({ 'r.merchant_id': merchant.merchantId, 'r.status': 'COMPLETED' }).where('r.created', '>=', start).where('r.created', '<=', end)
    .select('r.id', 'r.capture_id', 'r.amount', 'r.data', 'c.data as capture_data');
  const lines: Array<{ at: number; info: Record<string, unknown> }> = [];
  for (const c of captures) {
    const d = parseJson<CaptureData>(c.data, {} as CaptureData);
    const units = Number(c.amount);
    lines.push({
      at: d.createdAt,
      info: {
        transaction_id: c.id, transaction_event_code: 'T0006', transaction_initiation_date: ppTime(d.createdAt), transaction_updated_date: ppTime(d.updatedAt),
        transaction_amount: { currency_code: d.currency, value: valueOf(units, d.currency) }, fee_amount: { currency_code: d.currency, value: signed(-sandboxFee(units), d.currency) },
        transaction_status: STATUS[c.status as CaptureStatus] ?? 'P', transaction_subject: d.invoiceId ?? '', protection_eligibility: '01',
        ...(d.invoiceId ? { invoice_id: d.invoiceId } : {}), ...(d.customId ? { custom_field: d.customId } : {}),
      },
    });
  }
  for (const r of refunds) {
    const d = parseJson<RefundData>(r.data, {} as RefundData);
    const cd = parseJson<CaptureData>(r.capture_data, {} as CaptureData);
    const units = Number(r.amount);
    lines.push({
      at: d.createdAt,
      info: {
        transaction_id: r.id, paypal_reference_id: r.capture_id, paypal_reference_id_type: 'TXN', transaction_event_code: 'T1107',
        transaction_initiation_date: ppTime(d.createdAt), transaction_updated_date: ppTime(d.createdAt),
        transaction_amount: { currency_code: d.currency, value: signed(-units, d.currency) }, fee_amount: { currency_code: d.currency, value: signed(sandboxFee(units), d.currency) },
        transaction_status: 'S', protection_eligibility: '01',
        // The refund carries the payment's invoice_id; its own custom_id (the merchant's refund number) is the custom_field.
        ...(cd.invoiceId ? { invoice_id: cd.invoiceId } : {}), ...(d.customId ? { custom_field: d.customId } : {}),
      },
    });
  }
  lines.sort((a, b) => a.at - b.at || String(a.info.transaction_id).localeCompare(String(b.info.transaction_id)));
  const totalPages = Math.max(1, Math.ceil(lines.length / pageSize));
  const shown = lines.slice((page - 1) * pageSize, page * pageSize);
  return {
    status: 200,
    body: {
      transaction_details: shown.map((l) => ({
        transaction_info: { paypal_account_id: 'SANDBOXPAYER1', ...l.info },
        payer_info: { account_id: 'SANDBOXPAYER1', email_address: 'buyer@example.com', payer_status: 'Y', country_code: 'US' },
        cart_info: {},
      })),
      account_number: merchant.merchantId,
      start_date: startText,
      end_date: endText,
      last_refreshed_datetime: ppTime(Math.floor(Date.now() / 1000)),
      page,
      total_items: lines.length,
      total_pages: totalPages,
      links: [{ href: `/v1/reporting/transactions?page=${page}`, rel: 'self', method: 'GET' }],
    },
  };
}
