/**
 * WeChat Pay statements (API v3): GET /v3/bill/tradebill?bill_date&bill_type=ALL&tar_type=GZIP
 * (交易账单) and GET /v3/bill/fundflowbill?bill_date&account_type=BASIC&tar_type=GZIP (资金账单)
 * answer `{hash_type:"SHA1", hash_value, download_url}`; the download_url is fetched with the same
 * WECHATPAY2-SHA256-RSA2048 Authorization and answers the file itself, unsigned: its integrity is
 * the SHA1 of the (decompressed) bill, which must equal hash_value. The bill is CSV whose every
 * cell starts with a backtick (so Excel keeps numbers as text); the detail lines are followed by a
 * summary header (总交易单数,…) and one line of totals. A day without business answers 400
 * NO_STATEMENT_EXIST. Sources: pay.weixin.qq.com/docs/merchant/apis/bill-download/trade-bill/
 * get-trade-bill.html, …/fund-bill/get-fund-bill.html, …/download-bill/download-bill.html, and
 * the bill format page (账单文件格式) of the v2 downloadbill doc, whose columns v3 keeps.
 */
import crypto from 'node:crypto';
import { ChannelUnavailable, MalformedMessageError, SignatureError } from '../../errors.ts';
import {
  csvCells, maybeGunzip, yuanTextToFen, type ParsedStatement, type StatementChannel, type StatementKind, type StatementProblem, type StatementRow,
} from '../statements.ts';
import { callApi, faultOf } from './client.ts';
import { buildAuthorization } from './sign.ts';
import type { WechatpayCredentials } from './index.ts';

const DOWNLOAD_TIMEOUT_MS = 30_000;
const MAX_BILL_BYTES = 50 * 1024 * 1024;

export const wechatpayStatements: StatementChannel<WechatpayCredentials> = {
  provider: 'wechatpay',
  kinds: ['trade', 'fundflow'],

  async fetchStatement(cred, date, kind) {
    const path = kind === 'trade'
      ? `/v3/bill/tradebill?bill_date=${date}&bill_type=ALL&tar_type=GZIP`
      : `/v3/bill/fundflowbill?bill_date=${date}&account_type=BASIC&tar_type=GZIP`;
    const op = kind === 'trade' ? 'tradebill' : 'fundflowbill';
    const a = await callApi(cred, op, 'GET', path);
    if (!a.ok) {
      if (a.error.code === 'NO_STATEMENT_EXIST') return { status: 'missing', reason: `${a.error.code}: ${a.error.message.slice(0, 200)}` };
      throw faultOf(op, a);
    }
    const url = typeof a.data.download_url === 'string' ? a.data.download_url : '';
    const hashType = String(a.data.hash_type ?? '');
    const hashValue = String(a.data.hash_value ?? '');
    if (!/^https?:\/\//.test(url)) throw new ChannelUnavailable(`WeChat Pay ${op}: answered without a download_url`);
    if (hashType !== 'SHA1' || !/^[0-9a-fA-F]{40}$/.test(hashValue)) throw new ChannelUnavailable(`WeChat Pay ${op}: hash_type ${hashType.slice(0, 10)} is not SHA1 or hash_value is unreadable`);
    const body = await download(cred, url);
    const actual = crypto.createHash('sha1').update(maybeGunzip(body)).digest('hex');
    if (actual !== hashValue.toLowerCase()) {
      throw new SignatureError(`WeChat Pay ${op} of ${date}: the downloaded bill's SHA1 ${actual} is not the hash_value ${hashValue.toLowerCase()} WeChat published; the file was not stored`);
    }
    const fileName = `${kind === 'trade' ? 'tradebill' : 'fundflowbill'}_${date.replace(/-/g, '')}${body[0] === 0x1f ? '.csv.gz' : '.csv'}`;
    return { status: 'fetched', file: { kind, fileName, body, channelHash: { type: 'SHA1', value: hashValue.toLowerCase() } } };
  },

  parseStatement(body, kind) {
    return kind === 'trade' ? parseTradeBill(body) : parseFundFlowBill(body);
  },
};

/** The bill behind a download_url: signed like any v3 request; the answer is the raw file, unsigned. */
async function download(cred: WechatpayCredentials, url: string): Promise<Buffer> {
  const u = new URL(url);
  let res: Response;
  try {
    res = await fetch(u, {
      headers: {
        accept: '*/*',
        'user-agent': 'Checkstand/0.1 (WeChatPay-APIv3; node)',
        authorization: buildAuthorization({ mchid: cred.mchid, serialNo: cred.serialNo, privateKey: cred.privateKey, method: 'GET', pathWithQuery: u.pathname + u.search, body: '' }),
      },
      redirect: 'manual',
      signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS),
    });
  } catch {
    throw new ChannelUnavailable('WeChat Pay bill download: unreachable or no answer within 30s');
  }
  if (res.status !== 200) throw new ChannelUnavailable(`WeChat Pay bill download: HTTP ${res.status}`);
  const buf = Buffer.from(await res.arrayBuffer());
  if (buf.length > MAX_BILL_BYTES) throw new ChannelUnavailable('WeChat Pay bill download: larger than 50 MB');
  return buf;
}

/** The bill's lines as cells with the leading backtick taken off each. */
function billLines(body: Buffer): string[][] {
  let text = maybeGunzip(body).toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text.split(/\r?\n/).filter((l) => l.trim() !== '').map((l) => csvCells(l).map((c) => c.replace(/^`/, '').trim()));
}

/** Finds the header row by its first cell and returns a column lookup plus where it is. */
function table(lines: string[][], first: string, what: string) {
  const at = lines.findIndex((l) => l[0] === first);
  if (at < 0) throw new MalformedMessageError(`the ${what} has no header line starting ${first}`);
  const header = lines[at]!;
  const col = (name: string, optional = false) => {
    const i = header.indexOf(name);
    if (i < 0 && !optional) throw new MalformedMessageError(`the ${what} header lacks ${name}`);
    return i;
  };
  return { at, col };
}

/** `2019-06-11 10:00:00` in Beijing time → unix seconds; undefined when empty. */
function beijingSeconds(text: string, where: string): number | undefined {
  if (!text) return undefined;
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(text);
  if (!m) throw new MalformedMessageError(`${where}: ${JSON.stringify(text.slice(0, 30))} is not yyyy-MM-dd HH:mm:ss`);
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, s) / 1000 - 8 * 3600;
}

/** Reads a 交易账单 (bill_type ALL): SUCCESS lines are payments, REFUND lines refunds; checks the totals line. */
export function parseTradeBill(body: Buffer): ParsedStatement {
  const lines = billLines(body);
  const t = table(lines, '交易时间', '交易账单');
  const c = {
    time: t.col('交易时间'), mchid: t.col('商户号'), transactionId: t.col('微信订单号'), orderNo: t.col('商户订单号'), state: t.col('交易状态'),
    currency: t.col('货币种类'), settled: t.col('应结订单金额'), refundId: t.col('微信退款单号'), refundNo: t.col('商户退款单号'),
    refundAmount: t.col('退款金额'), refundState: t.col('退款状态'), fee: t.col('手续费'), total: t.col('订单金额', true), applied: t.col('申请退款金额', true),
  };
  const summaryAt = lines.findIndex((l, i) => i > t.at && l[0] === '总交易单数');
  const detail = lines.slice(t.at + 1, summaryAt < 0 ? undefined : summaryAt);
  const rows: StatementRow[] = [];
  let feeMicros = 0;
  detail.forEach((cells, n) => {
    const where = `交易账单 line ${t.at + n + 2}`;
    const state = cells[c.state] ?? '';
    const orderNo = cells[c.orderNo] ?? '';
    if (!orderNo) throw new MalformedMessageError(`${where}: no 商户订单号`);
    const feeText = cells[c.fee] || '0';
    feeMicros += micros(feeText, `${where} 手续费`);
    const fee = Math.abs(yuanTextToFen(feeText, `${where} 手续费`));
    const time = beijingSeconds(cells[c.time] ?? '', `${where} 交易时间`);
    const currency = cells[c.currency] || 'CNY';
    if (state === 'REFUND') {
      const amountText = (c.applied >= 0 && cells[c.applied]) || cells[c.refundAmount] || '0';
      rows.push({
        type: 'refund', orderNo, refundNo: cells[c.refundNo] || undefined, channelTradeNo: cells[c.transactionId], channelRefundNo: cells[c.refundId] || undefined,
        amount: Math.abs(yuanTextToFen(amountText, `${where} 退款金额`)), fee: -fee, currency, time, channelStatus: `REFUND/${cells[c.refundState] ?? ''}`,
      });
    } else {
      const amountText = (c.total >= 0 && cells[c.total]) || cells[c.settled] || '0';
      rows.push({
        type: 'payment', orderNo, channelTradeNo: cells[c.transactionId], amount: Math.abs(yuanTextToFen(amountText, `${where} 订单金额`)), fee, currency, time,
        channelStatus: state,
      });
    }
  });
  const problems: StatementProblem[] = [];
  if (summaryAt >= 0 && lines[summaryAt + 1]) {
    const head = lines[summaryAt]!;
    const v = lines[summaryAt + 1]!;
    const at = (name: string) => { const i = head.indexOf(name); return i >= 0 ? v[i] : undefined; };
    const count = at('总交易单数');
    if (count !== undefined && Number(count) !== rows.length) problems.push({ kind: 'total', detail: `总交易单数 says ${count}, the bill lists ${rows.length} lines` });
    const feeTotal = at('手续费总金额');
    if (feeTotal !== undefined && micros(feeTotal, '手续费总金额') !== feeMicros) {
      problems.push({ kind: 'fee', detail: `手续费总金额 says ${feeTotal}, the lines add up to ${(feeMicros / 100_000).toFixed(5)}` });
    }
    const payTotal = at('订单总金额');
    const listed = rows.filter((r) => r.type === 'payment').reduce((s, r) => s + r.amount, 0);
    if (payTotal !== undefined && yuanTextToFen(payTotal, '订单总金额') !== listed) problems.push({ kind: 'total', detail: `订单总金额 says ${payTotal}, the payment lines add up to ${listed} fen` });
  }
  const account = rows.length ? detail[0]![c.mchid] : undefined;
  return { rows, lineCount: rows.length, problems, ...(account ? { account } : {}) };
}

/** Reads a 资金账单: lines are counted and the totals line is checked; nothing in it is matched. */
export function parseFundFlowBill(body: Buffer): ParsedStatement {
  const lines = billLines(body);
  const t = table(lines, '记账时间', '资金账单');
  const c = { kind: t.col('收支类型'), amount: t.col('收支金额（元）') };
  const summaryAt = lines.findIndex((l, i) => i > t.at && l[0] === '资金流水总笔数');
  const detail = lines.slice(t.at + 1, summaryAt < 0 ? undefined : summaryAt);
  const problems: StatementProblem[] = [];
  if (summaryAt >= 0 && lines[summaryAt + 1]) {
    const head = lines[summaryAt]!;
    const v = lines[summaryAt + 1]!;
    const total = v[head.indexOf('资金流水总笔数')];
    if (total !== undefined && Number(total) !== detail.length) problems.push({ kind: 'total', detail: `资金流水总笔数 says ${total}, the bill lists ${detail.length}` });
    const income = v[head.indexOf('收入金额')];
    const listed = detail.filter((l) => l[c.kind] === '收入').reduce((s, l) => s + yuanTextToFen(l[c.amount] ?? '0', '收支金额'), 0);
    if (income !== undefined && yuanTextToFen(income, '收入金额') !== listed) problems.push({ kind: 'total', detail: `收入金额 says ${income}, the income lines add up to ${listed} fen` });
  }
  return { rows: [], lineCount: detail.length, problems };
}

/** A decimal of yuan as integer 1/100000 yuan (fees carry five decimals). */
function micros(text: string, what: string): number {
  const m = /^([+-]?)(\d{1,13})(?:\.(\d{1,5}))?$/.exec(text.trim());
  if (!m) throw new MalformedMessageError(`${what}: not an amount: ${JSON.stringify(text.slice(0, 24))}`);
  const v = Number(m[2]) * 100_000 + Number((m[3] ?? '').padEnd(5, '0'));
  return m[1] === '-' ? -v : v;
}

export type { StatementKind };
