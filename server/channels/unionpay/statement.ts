/**
 * UnionPay statements (全渠道对账文件): the file transfer request (txnType 76, txnSubType 01,
 * bizType 000000, fileType 00, settleDate MMDD) is a signed back post to the file host
 * (filedownload.95516.com; filedownload.test.95516.com in UnionPay's test environment) answered
 * with a signed raw `k=v` message whose fileContent is base64 of a zlib-deflated zip. The zip
 * holds the day's settlement files named INN<yyMMdd>88<type>_<merId>; ZM_ is the 全渠道流水 file
 * (one fixed-width GBK line per transaction, fields separated by one space), ZME_ its errors.
 * The signature over the message (fileContent included) is the file's integrity: there is no
 * separate digest. settleDate is UnionPay's clearing day (it turns at 23:00 Beijing time), so a
 * payment made after 23:00 may be listed on the next day's file. A day without a file answers 98.
 * Sources: the official ACP SDK (AcpService.deCodeFileContent: base64 → Inflater → the zip;
 * parseZMFile: the field widths {3,11,11,6,10,19,12,…}), its demo Form_7_2_FileTransfer and the
 * sample 802310048993424_20150905.zip → INN15090588ZM_802310048993424, and the field names of
 * 《全渠道平台接入接口规范 第3部分 文件接口》 6.1 as quoted by SDK users (UnionField).
 */
import zlib from 'node:zlib';
import iconv from 'iconv-lite';
import { unzipSync } from 'fflate';
import { ChannelRequestError, ChannelUnavailable, MalformedMessageError, SignatureError } from '../../errors.ts';
import type { ParsedStatement, StatementChannel, StatementRow } from '../statements.ts';
import { parseRawResponse, signRequest, verifyMessage } from './sign.ts';
import { ENCODING, VERSION, beijingTime, refundIdOf } from './transform.ts';
import type { UnionpayCredentials } from './index.ts';

const REQUEST_TIMEOUT_MS = 30_000;
const MAX_FILE_BYTES = 50 * 1024 * 1024;

/** The ZM file's fields in order with their widths in bytes (parseZMFile's lengthArray; 6.1 of the file spec). */
export const ZM_FIELDS = [
  ['tradeCode', 3], ['acqInsCode', 11], ['sendInsCode', 11], ['traceNo', 6], ['txnTime', 10], ['payCardNo', 19], ['txnAmt', 12],
  ['merCatCode', 4], ['termType', 2], ['queryId', 21], ['oldPayType', 2], ['orderId', 32], ['payCardType', 2], ['origTraceNo', 6],
  ['origTxnTime', 10], ['merCharge', 13], ['settleAmt', 13], ['payType', 4], ['groupMerId', 15], ['txnType', 2], ['txnSubType', 2],
  ['bizType', 6], ['accType', 2], ['billType', 4], ['billNo', 32], ['interactMode', 1], ['origQryId', 21], ['merId', 15],
  ['splitType', 1], ['subMerId', 15], ['subMerAbbr', 32], ['subMerAmt', 13], ['settleNetAmt', 13], ['termId', 8], ['merReserved', 32],
  ['discountAmt', 13], ['invoiceAmt', 13], ['installmentFee', 12], ['installmentNum', 2], ['tradeMedia', 1], ['origOrderId', 32], ['reserved', 98],
] as const;
export type ZmField = (typeof ZM_FIELDS)[number][0];
/** Bytes of one ZM line without its line end: the widths plus one space after each field but the last. */
export const ZM_LINE_BYTES = ZM_FIELDS.reduce((s, [, w]) => s + w, 0) + ZM_FIELDS.length - 1;

export const unionpayStatements: StatementChannel<UnionpayCredentials> = {
  provider: 'unionpay',
  kinds: ['trade'],

  async fetchStatement(cred, date) {
    const settleDate = date.slice(5, 7) + date.slice(8, 10);
    const txnTime = beijingTime(Date.now() / 1000);
    const r = await post(cred, {
      version: VERSION, encoding: ENCODING, txnType: '76', txnSubType: '01', bizType: '000000', accessType: '0',
      merId: cred.merId, settleDate, txnTime, fileType: '00',
    });
    // 98: 文件不存在 (no file for that clearing day, or not generated yet).
    if (r.respCode === '98') return { status: 'missing', reason: `98: ${String(r.respMsg ?? '文件不存在').slice(0, 200)}` };
    if (r.respCode !== '00') {
      const detail = `UnionPay fileTransfer: ${r.respCode} ${String(r.respMsg ?? '').slice(0, 200)}`;
      if (r.respCode === '10' || r.respCode === '13') throw new ChannelRequestError(r.respCode, detail);
      throw new ChannelUnavailable(detail);
    }
    if (r.merId !== cred.merId) throw new MalformedMessageError('UnionPay fileTransfer: answer is for another merId');
    if (r.settleDate !== undefined && r.settleDate !== settleDate) throw new MalformedMessageError('UnionPay fileTransfer: answer is for another settleDate');
    if (!r.fileContent) throw new ChannelUnavailable('UnionPay fileTransfer: answered 00 without fileContent');
    let zip: Buffer;
    try {
      zip = zlib.inflateSync(Buffer.from(r.fileContent, 'base64'), { maxOutputLength: MAX_FILE_BYTES });
    } catch {
      throw new MalformedMessageError('UnionPay fileTransfer: fileContent does not inflate');
    }
    const fileName = /^[\w.-]{1,100}$/.test(r.fileName ?? '') ? r.fileName! : `${cred.merId}_${date.replace(/-/g, '')}.zip`;
    return { status: 'fetched', file: { kind: 'trade', fileName, body: zip } };
  },

  parseStatement(body) {
    return parseUnionpayStatement(body);
  },
};

/** Where the file transfer is posted: UnionPay's file host beside its gateway host, or the simulator's path. */
export function fileTransferUrl(gateway: string): string {
  const u = new URL(gateway);
  if (u.hostname.startsWith('gateway.') && (u.pathname === '/' || u.pathname === '')) return `${u.protocol}//filedownload.${u.hostname.slice(8)}${u.port ? `:${u.port}` : ''}/`;
  return `${gateway.replace(/\/+$/, '')}/filedownload/`;
}

/** The signed post and its verified answer (an unsigned answer is only ever a fault). */
async function post(cred: UnionpayCredentials, fields: Record<string, string>): Promise<Record<string, string>> {
  const body = new URLSearchParams(signRequest(fields, cred.signKey, cred.certId)).toString();
  let text: string;
  let status: number;
  try {
    const res = await fetch(fileTransferUrl(cred.gateway), {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' }, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    status = res.status;
    text = await res.text();
  } catch {
    throw new ChannelUnavailable(`UnionPay fileTransfer: file host unreachable or no answer within ${REQUEST_TIMEOUT_MS / 1000}s`);
  }
  if (status !== 200) throw new ChannelUnavailable(`UnionPay fileTransfer: answered HTTP ${status}`);
  let r: Record<string, string>;
  try {
    r = parseRawResponse(text.replace(/\s+$/, ''));
  } catch {
    throw new ChannelUnavailable('UnionPay fileTransfer: unreadable answer');
  }
  if (!r.respCode) throw new ChannelUnavailable('UnionPay fileTransfer: answer without respCode');
  if (!r.signature || !r.signPubKeyCert) {
    if (r.respCode === '00') throw new SignatureError('UnionPay fileTransfer: answer is not signed');
    throw new ChannelUnavailable(`UnionPay fileTransfer: ${r.respCode} ${String(r.respMsg ?? '').slice(0, 200)}`);
  }
  verifyMessage(r, cred.trust, Date.now());
  return r;
}

/** The ZM file out of the zip (or the file itself, uploaded unzipped), with the yyMMdd of its name when it has one. */
function zmFile(body: Buffer): { bytes: Buffer; yymmdd?: string } {
  if (body[0] !== 0x50 || body[1] !== 0x4b) return { bytes: body };
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(new Uint8Array(body));
  } catch {
    throw new MalformedMessageError('the UnionPay statement is a zip that does not open');
  }
  const name = Object.keys(entries).find((n) => /ZM_[^/]*$/.test(n) && !/ZME_/.test(n));
  if (!name) throw new MalformedMessageError('the UnionPay zip holds no INN…ZM_ (全渠道流水) file');
  return { bytes: Buffer.from(entries[name]!), yymmdd: /INN(\d{6})/.exec(name)?.[1] };
}

/** One ZM line's fields (bytes cut at the widths, then decoded from GBK and trimmed). */
function zmFields(line: Buffer, where: string): Record<ZmField, string> {
  // The last field (reserved) may be trimmed away by an editor; every other one must be there.
  if (line.length < ZM_LINE_BYTES - 98) throw new MalformedMessageError(`${where}: ${line.length} bytes, a ZM line has ${ZM_LINE_BYTES}`);
  const out = {} as Record<ZmField, string>;
  let at = 0;
  for (const [name, width] of ZM_FIELDS) {
    out[name] = iconv.decode(line.subarray(at, at + width), 'gbk').trim();
    at += width + 1;
  }
  return out;
}

/** A fixed-width amount of fen: digits, optionally led by C (credit to the merchant) or D (debit). */
function fenOf(text: string, where: string): { fen: number; sign: 'C' | 'D' | '' } {
  const m = /^([CD]?)(\d{1,13})$/.exec(text);
  if (!m) throw new MalformedMessageError(`${where}: not an amount of fen: ${JSON.stringify(text.slice(0, 20))}`);
  return { fen: Number(m[2]), sign: m[1] as 'C' | 'D' | '' };
}

/** MMDDhhmmss Beijing time → unix seconds, the year taken from the file's day (a January file lists no December but the one before). */
function timeOf(mmddhhmmss: string, yyyy: number, fileMonth: number, where: string): number {
  const m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(mmddhhmmss);
  if (!m) throw new MalformedMessageError(`${where}: txnTime ${JSON.stringify(mmddhhmmss.slice(0, 12))} is not MMDDhhmmss`);
  const [mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number];
  const year = mo > fileMonth + 1 ? yyyy - 1 : yyyy;
  return Date.UTC(year, mo - 1, d, h, mi, s) / 1000 - 8 * 3600;
}

/**
 * Reads a UnionPay settlement zip (or its ZM file alone): consumes (txnType 01) are payments;
 * refunds (04) and consume undos (31) are refunds, named by their own orderId (our refund's)
 * and tied to the payment by origQryId. merCharge is the fee: D charged, C given back.
 */
export function parseUnionpayStatement(body: Buffer): ParsedStatement {
  const { bytes, yymmdd } = zmFile(body);
  const now = new Date(Date.now() + 8 * 3_600_000);
  const yyyy = yymmdd ? 2000 + Number(yymmdd.slice(0, 2)) : now.getUTCFullYear();
  const fileMonth = yymmdd ? Number(yymmdd.slice(2, 4)) : now.getUTCMonth() + 1;
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      let end = i;
      if (end > start && bytes[end - 1] === 0x0d) end--;
      if (end > start) lines.push(bytes.subarray(start, end));
      start = i + 1;
    }
  }
  if (lines.length && lines[0]!.length < ZM_LINE_BYTES - 98) throw new MalformedMessageError(`not a UnionPay ZM file: its first line has ${lines[0]!.length} bytes, a ZM line ${ZM_LINE_BYTES}`);
  const parsed = lines.map((l, n) => ({ f: zmFields(l, `ZM line ${n + 1}`), where: `ZM line ${n + 1}` }));
  const orderOfQuery = new Map(parsed.filter((p) => p.f.txnType === '01').map((p) => [p.f.queryId, p.f.orderId]));
  const rows: StatementRow[] = [];
  let account: string | undefined;
  for (const { f, where } of parsed) {
    account ??= f.merId || undefined;
    const amount = fenOf(f.txnAmt, `${where} txnAmt`).fen;
    const charge = fenOf(f.merCharge || '0', `${where} merCharge`);
    const fee = charge.sign === 'C' ? -charge.fen : charge.fen;
    const time = timeOf(f.txnTime, yyyy, fileMonth, `${where} txnTime`);
    const channelStatus = `${f.tradeCode}/${f.txnType}`;
    if (!f.orderId) throw new MalformedMessageError(`${where}: no orderId`);
    if (f.txnType === '01') {
      rows.push({ type: 'payment', orderNo: f.orderId, channelTradeNo: f.queryId, amount, fee, currency: 'CNY', time, channelStatus });
    } else if (f.txnType === '04' || f.txnType === '31') {
      rows.push({
        type: 'refund', orderNo: orderOfQuery.get(f.origQryId) ?? '', refundNo: refundIdOf(f.orderId) ?? f.orderId, channelTradeNo: f.origQryId || undefined,
        channelRefundNo: f.queryId, amount, fee, currency: 'CNY', time, channelStatus,
      });
    }
    // Other transaction types (pre-authorisations, fees, adjustments) move no payment of ours.
  }
  return { rows, lineCount: lines.length, problems: [], ...(account ? { account } : {}) };
}

/** The deflated, base64 fileContent of a zip, as UnionPay sends it (for the simulator and tests). */
export const fileContentOf = (zip: Buffer): string => zlib.deflateSync(zip).toString('base64');
