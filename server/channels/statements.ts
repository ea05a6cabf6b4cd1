/**
 * The statement capability (对账单, DESIGN §Console "Reconciliation"): an adapter that can fetch a
 * day's statement as the channel publishes it, check the channel's own hash, and read it into
 * normalized rows. Stateless like the adapters: the statements domain (server/statements) stores
 * files and rows and matches them against the gateway's payments.
 */
import zlib from 'node:zlib';
import { MalformedMessageError } from '../errors.ts';
import type { Provider } from './types.ts';

/** trade: payments and refunds (Alipay 业务明细, WeChat 交易账单); fundflow: money movements (WeChat 资金账单). */
export type StatementKind = 'trade' | 'fundflow';

/** One file as the channel serves it (the bytes stored and hashed are these, compressed or not). */
export interface StatementFile {
  kind: StatementKind;
  fileName: string;
  body: Buffer;
  /** The digest the channel published for the file (WeChat: SHA1 of the bill), already checked by the adapter. */
  channelHash?: { type: string; value: string };
}

export type StatementFetch =
  | { status: 'fetched'; file: StatementFile }
  /** The channel has no statement for the day (no business that day, or not generated yet). */
  | { status: 'missing'; reason: string };

/** One line of a statement, normalized. Amounts are positive integers of minor units. */
export interface StatementRow {
  type: 'payment' | 'refund';
  /** The merchant order number at the channel: our attempt's channel_order_no. */
  orderNo: string;
  /** Our refund number at the channel (refunds: our refund id). */
  refundNo?: string;
  channelTradeNo?: string;
  channelRefundNo?: string;
  amount: number;
  /** The channel's fee on this line: positive when charged, negative when given back (a refund). */
  fee: number;
  currency: string;
  /** Unix seconds: when the channel completed it. */
  time?: number;
  /** The channel's own words for the line (交易/退款, SUCCESS/REFUND), for the report. */
  channelStatus: string;
}

/** Where a file disagrees with itself: its stated totals (汇总) against its own lines. */
export interface StatementProblem {
  /** fee: the fee total; total: a count or an amount. */
  kind: 'fee' | 'total';
  detail: string;
}

export interface ParsedStatement {
  rows: StatementRow[];
  /** Lines read (a fund-flow file's lines are counted, not matched). */
  lineCount: number;
  problems: StatementProblem[];
  /** The account the file is for (Alipay 账号, WeChat 商户号), when it says. */
  account?: string;
}

export interface StatementChannel<Cred = unknown> {
  provider: Provider;
  /** The statements the channel publishes per day; the first is the one matched against payments. */
  kinds: readonly StatementKind[];
  /** Fetches the statement of a Beijing date (YYYY-MM-DD); throws SignatureError when the channel's hash does not match. */
  fetchStatement(cred: Cred, date: string, kind: StatementKind): Promise<StatementFetch>;
  /** Reads a file as fetched or uploaded; throws MalformedMessageError naming what is wrong. */
  parseStatement(body: Buffer, kind: StatementKind): ParsedStatement;
}

// --- helpers the parsers share --------------------------------------------------------------------

/** Splits one CSV line (RFC 4180 quotes allowed) into cells. */
export function csvCells(line: string): string[] {
  const out: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"' && cell === '') quoted = true;
    else if (c === ',') {
      out.push(cell);
      cell = '';
    } else cell += c;
  }
  out.push(cell);
  return out;
}

/**
 * A signed decimal of yuan ("-0.06", "12.34", "0.00600") → integer fen, rounded half away from
 * zero (WeChat prints fees with five decimals; the fee settled is in fen). Parsed as text.
 */
export function yuanTextToFen(text: string, what: string): number {
  const m = /^([+-]?)(\d{1,13})(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (!m) throw new MalformedMessageError(`${what}: not an amount: ${JSON.stringify(text.slice(0, 24))}`);
  const frac = (m[3] ?? '').padEnd(6, '0');
  let fen = Number(m[2]) * 100 + Number(frac.slice(0, 2));
  if (Number(frac.slice(2)) >= 5000) fen += 1;
  return m[1] === '-' ? -fen : fen;
}

/** Gunzips when the bytes are gzip (WeChat's tar_type=GZIP), else returns them as they are. */
export function maybeGunzip(body: Buffer): Buffer {
  if (body.length > 2 && body[0] === 0x1f && body[1] === 0x8b) {
    try {
      return zlib.gunzipSync(body, { maxOutputLength: 200 * 1024 * 1024 });
    } catch {
      throw new MalformedMessageError('the statement is gzip but does not decompress');
    }
  }
  return body;
}
