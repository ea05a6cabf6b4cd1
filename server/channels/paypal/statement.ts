/**
 * PayPal statements: the Transaction Search API, GET /v1/reporting/transactions?start_date&
 * end_date&fields=all&page_size&page, with the adapter's OAuth bearer (the REST app needs the
 * Transaction Search permission, scope …/services/reporting/search/read; without it PayPal
 * answers 403 NOT_AUTHORIZED). The Beijing day is asked as one range (PayPal allows 31 days, 500
 * per page, total_pages to walk); the pages are kept as one document of the same shape (every
 * transaction_details of the day, total_items as PayPal counted them). Per transaction_info:
 * transaction_event_code T00xx is a payment received (T0006 Express Checkout / Orders v2, T0007
 * Website Payments Standard), T1107 a payment refund; transaction_amount is signed (a refund is
 * negative), fee_amount too (the fee charged is negative, the fee given back positive);
 * transaction_status S success, F partially refunded, V reversed (fully refunded: the payment
 * still happened), P pending, D denied. The gateway's order number is the capture's invoice_id
 * (and custom_id, createOrderBody in transform.ts); a refund carries the payment's invoice_id and
 * our refund number as its custom_id (refundBody). PayPal may take up to three hours to list a
 * transaction (last_refreshed_datetime). Sources: developer.paypal.com/docs/api/transaction-search/v1/
 * (transactions GET, transaction_info), …/docs/transaction-search/ and the event code table
 * (…/docs/reports/reference/tcodes/).
 */
import { ChannelUnavailable, MalformedMessageError } from '../../errors.ts';
import type { ParsedStatement, StatementChannel, StatementProblem, StatementRow } from '../statements.ts';
import { callApi, faultOf } from './client.ts';
import { minorUnitsOf, unixOf } from './transform.ts';
import type { PaypalCredentials } from './index.ts';

const PAGE_SIZE = 500;
const MAX_PAGES = 100;

export const paypalStatements: StatementChannel<PaypalCredentials> = {
  provider: 'paypal',
  kinds: ['trade'],

  async fetchStatement(cred, date) {
    // The Beijing day, in the offset form PayPal's ppaas_date_time_v3 takes.
    const q = { start_date: `${date}T00:00:00+08:00`, end_date: `${date}T23:59:59.999+08:00`, fields: 'all', page_size: String(PAGE_SIZE) };
    const details: unknown[] = [];
    let first: Record<string, unknown> | undefined;
    for (let page = 1; page <= MAX_PAGES; page++) {
      const path = `/v1/reporting/transactions?${new URLSearchParams({ ...q, page: String(page) })}`;
      const a = await callApi(cred, 'transaction search', 'GET', path);
      if (!a.ok) throw faultOf('transaction search', a);
      const list = a.data.transaction_details;
      if (!Array.isArray(list)) throw new ChannelUnavailable('PayPal transaction search: answered without transaction_details');
      first ??= a.data;
      details.push(...list);
      const pages = typeof a.data.total_pages === 'number' ? a.data.total_pages : 1;
      if (page >= pages) break;
      if (page === MAX_PAGES) throw new ChannelUnavailable(`PayPal transaction search: more than ${MAX_PAGES * PAGE_SIZE} transactions in a day`);
    }
    const doc = { ...first, transaction_details: details, page: 1, total_pages: 1, links: undefined };
    const body = Buffer.from(JSON.stringify(doc));
    return { status: 'fetched', file: { kind: 'trade', fileName: `paypal_transactions_${date.replace(/-/g, '')}.json`, body } };
  },

  parseStatement(body) {
    return parseTransactionSearch(body);
  },
};

interface Money {
  currency_code?: unknown;
  value?: unknown;
}

/** A signed money string → minor units (ISO) with its sign; undefined when absent or not money. */
function signedMinor(m: Money | undefined, where: string): { amount: number; currency: string } | undefined {
  if (!m || m.value === undefined) return undefined;
  const currency = typeof m.currency_code === 'string' && /^[A-Z]{3}$/.test(m.currency_code) ? m.currency_code : undefined;
  const text = typeof m.value === 'string' ? m.value : '';
  const negative = text.startsWith('-');
  const amount = currency ? minorUnitsOf(negative ? text.slice(1) : text, currency) : undefined;
  if (!currency || amount === undefined) throw new MalformedMessageError(`${where}: not a PayPal amount: ${JSON.stringify(String(m.value).slice(0, 24))}`);
  return { amount: negative ? -amount : amount, currency };
}

const PAID = new Set(['S', 'F', 'V']);
/** Transaction Search writes offsets without the colon (2019-09-16T02:55:23+0000); unixOf takes RFC 3339. */
const timeOf = (v: unknown): number | undefined => unixOf(typeof v === 'string' ? v.replace(/([+-]\d{2})(\d{2})$/, '$1:$2') : v);
const str = (v: unknown): string => (typeof v === 'string' ? v.trim() : '');

/** Reads a Transaction Search answer (one page, or the day's pages as fetched) into rows. */
export function parseTransactionSearch(body: Buffer): ParsedStatement {
  let doc: { transaction_details?: unknown; total_items?: unknown; account_number?: unknown };
  try {
    doc = JSON.parse(body.toString('utf8').replace(/^\uFEFF/, ''));
  } catch {
    throw new MalformedMessageError('not JSON: a PayPal statement is the Transaction Search answer (GET /v1/reporting/transactions)');
  }
  if (!doc || typeof doc !== 'object' || !Array.isArray(doc.transaction_details)) throw new MalformedMessageError('no transaction_details: not a PayPal Transaction Search answer');
  const rows: StatementRow[] = [];
  doc.transaction_details.forEach((d: unknown, i: number) => {
    const where = `transaction_details[${i}]`;
    const t = (d as { transaction_info?: Record<string, unknown> } | null)?.transaction_info;
    if (!t || typeof t !== 'object') throw new MalformedMessageError(`${where}: no transaction_info`);
    const code = str(t.transaction_event_code);
    const status = str(t.transaction_status);
    const money = signedMinor(t.transaction_amount as Money | undefined, `${where}.transaction_amount`);
    if (!money) throw new MalformedMessageError(`${where}: no transaction_amount`);
    const feeMoney = signedMinor(t.fee_amount as Money | undefined, `${where}.fee_amount`);
    // PayPal signs the fee as a money movement (charged: negative); rows count a charged fee positive.
    const fee = feeMoney ? -feeMoney.amount : 0;
    const time = timeOf(t.transaction_initiation_date) ?? timeOf(t.transaction_updated_date);
    const orderNo = str(t.invoice_id) || str(t.custom_field);
    const base = { amount: Math.abs(money.amount), fee, currency: money.currency, time, channelStatus: `${code}/${status}` };
    if (/^T00\d\d$/.test(code) && money.amount > 0) {
      // Pending (P) and denied (D) payments moved no money yet: not a payment of the day.
      if (!PAID.has(status)) return;
      if (!orderNo) throw new MalformedMessageError(`${where}: a payment without invoice_id or custom_field`);
      rows.push({ type: 'payment', orderNo, channelTradeNo: str(t.transaction_id), ...base });
    } else if (code === 'T1107') {
      if (status !== 'S') return;
      const refundNo = /^re_[A-Za-z0-9]+$/.test(str(t.custom_field)) ? str(t.custom_field) : undefined;
      rows.push({
        type: 'refund', orderNo: str(t.invoice_id), refundNo, channelTradeNo: str(t.paypal_reference_id) || undefined, channelRefundNo: str(t.transaction_id), ...base,
      });
    }
    // Other event codes (transfers, holds, currency conversions, fees) are not payments of ours.
  });
  const problems: StatementProblem[] = [];
  if (typeof doc.total_items === 'number' && doc.total_items !== doc.transaction_details.length) {
    problems.push({ kind: 'total', detail: `total_items says ${doc.total_items}, the answer holds ${doc.transaction_details.length} transactions` });
  }
  const account = str(doc.account_number);
  return { rows, lineCount: doc.transaction_details.length, problems, ...(account ? { account } : {}) };
}
