/**
 * The UnionPay simulator's settlement files (对账文件): POST …/filedownload/ takes the signed file
 * transfer request (txnType 76, bizType 000000, fileType 00, settleDate MMDD) and answers, signed
 * like every answer, fileName and fileContent: base64 of the deflated zip holding
 * INN<yyMMdd>88ZM_<merId> (one fixed-width GBK line per consume and refund settled that day) and
 * an empty INN<yyMMdd>88ZME_<merId>. Format: channels/unionpay/statement.ts. Differences from
 * UnionPay: the clearing day is the calendar day of txnTime (UnionPay turns it at 23:00), the
 * file of today is served too (UnionPay publishes it the next morning), the fee is the
 * simulator's fixed 0.6% (given back pro rata on a refund), card numbers are masked test cards,
 * and a day without transactions answers 98 文件不存在.
 */
import iconv from 'iconv-lite';
import type { SandboxDeps } from '../types.ts';
import { ENCODING, VERSION } from '../../channels/unionpay/transform.ts';
import { ZM_FIELDS, fileContentOf, type ZmField } from '../../channels/unionpay/statement.ts';
import { sandboxFee } from '../statement-token.ts';
import { zipGbk } from '../alipay/statement.ts';
import { parseJson } from '../../db.ts';
import type { SandboxMerchant, TxnData } from './store.ts';
import { respMsgOf } from './notify.ts';

/** The file transfer (txnType 76): the answer's fields, to be signed by the caller. */
export async function fileTransfer(deps: SandboxDeps, merchant: SandboxMerchant, f: Record<string, string>): Promise<Record<string, string>> {
  const base: Record<string, string> = { version: VERSION, encoding: ENCODING, bizType: '000000', txnType: '76', txnSubType: '01', accessType: '0', merId: merchant.merId };
  if (f.txnTime) base.txnTime = f.txnTime;
  if (f.settleDate) base.settleDate = f.settleDate;
  const answer = (code: string, extra: Record<string, string> = {}) => ({ ...base, ...extra, respCode: code, respMsg: respMsgOf(code) });
  if (f.txnType !== '76' || f.txnSubType !== '01' || f.bizType !== '000000' || f.accessType !== '0') return answer('10');
  if (!f.settleDate || !f.txnTime || !f.fileType) return answer('13');
  if (f.fileType !== '00' || !/^(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$/.test(f.settleDate) || !/^\d{14}$/.test(f.txnTime)) return answer('10');
  const date = clearingDate(f.settleDate);
  const zm = await zmText(deps, merchant, date);
  if (!zm) return { ...base, fileType: '00', respCode: '98', respMsg: '文件不存在[2300000]' };
  const yymmdd = date.slice(2);
  const zip = zipGbk([
    { name: `INN${yymmdd}88ZM_${merchant.merId}`, data: zm },
    { name: `INN${yymmdd}88ZME_${merchant.merId}`, data: Buffer.alloc(0) },
  ]);
  return answer('00', { fileType: '00', fileName: `${merchant.merId}_20${yymmdd}.zip`, fileContent: fileContentOf(zip) });
}

/** The yyyyMMdd a settleDate (MMDD) means: the latest such day that is not in the future, Beijing time. */
function clearingDate(mmdd: string): string {
  const today = new Date(Date.now() + 8 * 3_600_000).toISOString().slice(0, 10).replace(/-/g, '');
  const year = Number(today.slice(0, 4));
  return `${mmdd <= today.slice(4) ? year : year - 1}${mmdd}`;
}

/** One line: numbers zero-padded on the left, text space-padded on the right, to the widths in bytes (GBK). */
function zmLine(values: Partial<Record<ZmField, string>>, numeric: ReadonlySet<ZmField>): Buffer {
  const parts: Buffer[] = [];
  ZM_FIELDS.forEach(([name, width], i) => {
    let v = iconv.encode(values[name] ?? '', 'gbk');
    if (v.length > width) v = v.subarray(0, width);
    const pad = Buffer.alloc(width - v.length, numeric.has(name) && values[name] !== undefined ? '0' : ' ');
    parts.push(numeric.has(name) && values[name] !== undefined ? Buffer.concat([pad, v]) : Buffer.concat([v, pad]));
    if (i < ZM_FIELDS.length - 1) parts.push(Buffer.from(' '));
  });
  return Buffer.concat(parts);
}

const NUMERIC: ReadonlySet<ZmField> = new Set(['txnAmt', 'traceNo', 'origTraceNo']);
const fen12 = (fen: number) => String(fen).padStart(12, '0');

/** The ZM file of a clearing day (yyyyMMdd): its consumes and refunds that succeeded, in txnTime order; undefined when none. */
async function zmText(deps: SandboxDeps, merchant: SandboxMerchant, date: string): Promise<Buffer | undefined> {
  const txns = await deps.db('sandbox_unionpay_txns')
    .where({ mer_id: merchant.merId, txn_date: date, status: 'succeeded' })
    .whereIn('txn_type', ['01', '04', '31'])
    .orderBy('txn_time')
    .select('order_id', 'txn_time', 'txn_type', 'query_id', 'orig_qry_id', 'amount', 'data');
  if (txns.length === 0) return undefined;
  const lines = txns.map((t: any) => {
    const d = parseJson<TxnData>(t.data, {} as TxnData);
    const amount = Number(t.amount);
    const fee = sandboxFee(amount);
    const consume = t.txn_type === '01';
    return zmLine({
      tradeCode: consume ? 'S22' : t.txn_type === '31' ? 'S30' : 'S31', acqInsCode: '48021000', sendInsCode: '48021000', traceNo: d.traceNo ?? '000000',
      txnTime: String(t.txn_time).slice(4), payCardNo: '6216***********0018', txnAmt: fen12(amount), merCatCode: '5812', termType: d.channelType ?? '07',
      queryId: t.query_id, oldPayType: '00', orderId: t.order_id, payCardType: '01',
      // A consume is charged its fee (D); a refund gets its share back (C).
      merCharge: `${consume ? 'D' : 'C'}${fen12(fee)}`, settleAmt: `${consume ? 'C' : 'D'}${fen12(amount)}`, payType: '0001', txnType: t.txn_type,
      txnSubType: consume ? '01' : '00', bizType: '000201', accType: '01', interactMode: '0', origQryId: t.orig_qry_id ?? '', merId: merchant.merId,
      splitType: '0', settleNetAmt: `${consume ? 'C' : 'D'}${fen12(amount - fee)}`, tradeMedia: '0',
    }, NUMERIC);
  });
  return Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\r\n')]));
}
