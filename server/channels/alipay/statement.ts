/**
 * Alipay statements (对账单): alipay.data.dataservice.bill.downloadurl.query with bill_type
 * "trade" (the merchant's 交易收单 business bill) gives a bill_download_url, valid for 30 seconds,
 * that serves a zip of two GBK CSV files: `<pid>0156_<yyyyMMdd>_业务明细.csv` (one line per trade
 * and per refund) and `…_业务明细(汇总).csv` (the totals). Both open with `#` lines (title,
 * 账号, 起始日期/终止日期, a dashed list marker) and end with `#` lines (交易合计/退款合计,
 * 导出时间). Cells are padded with a trailing tab so Excel keeps long numbers as text.
 * Sources: opendocs.alipay.com/apis/api_15/alipay.data.dataservice.bill.downloadurl.query and
 * open/204/106262 (对账说明); recorded files as quoted by SDKs' tests (e.g. a 2019-09-16 bill with
 * 交易 and 退款 lines and the 交易合计/退款合计 footer). A day without a bill answers 40004
 * isp.bill_not_exist.
 */
import iconv from 'iconv-lite';
import { unzipSync } from 'fflate';
import { ChannelUnavailable, MalformedMessageError } from '../../errors.ts';
import { csvCells, yuanTextToFen, type ParsedStatement, type StatementChannel, type StatementProblem, type StatementRow } from '../statements.ts';
import { callGateway, type AlipayCredentials } from './index.ts';
import { parseBeijingTime } from './transform.ts';

export const BILL_METHOD = 'alipay.data.dataservice.bill.downloadurl.query';
const DOWNLOAD_TIMEOUT_MS = 30_000;
const MAX_BILL_BYTES = 50 * 1024 * 1024;

export const alipayStatements: StatementChannel<AlipayCredentials> = {
  provider: 'alipay',
  kinds: ['trade'],

  async fetchStatement(cred, date) {
    const r = await callGateway(cred, BILL_METHOD, { bill_type: 'trade', bill_date: date });
    if (r.code !== '10000') {
      if (r.sub_code === 'isp.bill_not_exist') return { status: 'missing', reason: `${r.sub_code}: ${String(r.sub_msg ?? '账单不存在')}` };
      throw new ChannelUnavailable(`Alipay ${BILL_METHOD}: ${r.code} ${r.sub_code ?? ''} ${String(r.sub_msg ?? r.msg ?? '').slice(0, 200)}`);
    }
    const url = typeof r.bill_download_url === 'string' ? r.bill_download_url : '';
    if (!/^https?:\/\//.test(url)) throw new ChannelUnavailable(`Alipay ${BILL_METHOD}: answered without a bill_download_url`);
    const body = await download(url);
    const name = new URL(url).searchParams.get('downloadFileName') ?? `alipay_${date.replace(/-/g, '')}.csv.zip`;
    return { status: 'fetched', file: { kind: 'trade', fileName: name.slice(0, 200), body } };
  },

  parseStatement(body) {
    return parseAlipayBill(body);
  },
};

/** The file behind a bill_download_url: a plain GET, no signature (the URL's token is the credential). */
async function download(url: string): Promise<Buffer> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS) });
  } catch {
    throw new ChannelUnavailable('Alipay bill download: unreachable or no answer within 30s');
  }
  if (res.status !== 200) throw new ChannelUnavailable(`Alipay bill download: HTTP ${res.status}`);
  const buf = Buffer.from(await res.arrayBuffer());
  if (buf.length > MAX_BILL_BYTES) throw new ChannelUnavailable('Alipay bill download: larger than 50 MB');
  return buf;
}

/** Text of a bill file: GBK as Alipay writes it; UTF-8 (a file re-saved by a spreadsheet) is accepted too. */
function decodeText(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes);
  const hasBom = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(hasBom ? buf.subarray(3) : buf);
  } catch {
    return iconv.decode(buf, 'gbk');
  }
}

/** The zip's CSV texts (or the one CSV given as such), detail first. */
function billTexts(body: Buffer): { detail: string; summary?: string } {
  let texts: string[];
  if (body[0] === 0x50 && body[1] === 0x4b) {
    let entries: Record<string, Uint8Array>;
    try {
      entries = unzipSync(new Uint8Array(body));
    } catch {
      throw new MalformedMessageError('the Alipay bill is a zip that does not open');
    }
    texts = Object.values(entries).map(decodeText);
  } else {
    texts = [decodeText(body)];
  }
  // Told apart by their first line, not their names (the names are GBK without the zip's UTF-8 flag).
  const detail = texts.find((t) => t.startsWith('#支付宝业务明细查询'));
  if (!detail) throw new MalformedMessageError('no 业务明细 file: the Alipay bill must contain a CSV starting "#支付宝业务明细查询"');
  return { detail, summary: texts.find((t) => t.startsWith('#支付宝业务汇总查询')) };
}

const clean = (cell: string | undefined) => (cell ?? '').replace(/\t/g, '').trim();

/** Reads a trade bill (zip or its 业务明细 CSV) into rows, checking its footer and 汇总 totals. */
export function parseAlipayBill(body: Buffer): ParsedStatement {
  const { detail, summary } = billTexts(body);
  const lines = detail.split(/\r?\n/);
  const account = /#账号：\[(\d+)\]/.exec(detail)?.[1];
  const headerAt = lines.findIndex((l) => l.startsWith('支付宝交易号'));
  if (headerAt < 0) throw new MalformedMessageError('the 业务明细 file has no header line (支付宝交易号,商户订单号,…)');
  const header = csvCells(lines[headerAt]!).map(clean);
  const col = (name: string) => {
    const i = header.indexOf(name);
    if (i < 0) throw new MalformedMessageError(`the 业务明细 header lacks ${name}`);
    return i;
  };
  const c = {
    tradeNo: col('支付宝交易号'), orderNo: col('商户订单号'), type: col('业务类型'), done: col('完成时间'),
    amount: col('订单金额（元）'), refundNo: col('退款批次号/请求号'), fee: col('服务费（元）'),
  };
  const rows: StatementRow[] = [];
  let i = headerAt + 1;
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('#')) break;
    if (!line.trim()) continue;
    const cells = csvCells(line).map(clean);
    const where = `业务明细 line ${i + 1}`;
    const type = cells[c.type] ?? '';
    if (type !== '交易' && type !== '退款') continue; // other business types (e.g. 结算) are not payments
    const amount = Math.abs(yuanTextToFen(cells[c.amount] ?? '', `${where} 订单金额`));
    const fee = Math.abs(yuanTextToFen(cells[c.fee] || '0', `${where} 服务费`));
    const doneText = cells[c.done] ?? '';
    let time: number | undefined;
    try {
      time = doneText ? parseBeijingTime(doneText) : undefined;
    } catch {
      throw new MalformedMessageError(`${where}: 完成时间 ${JSON.stringify(doneText.slice(0, 30))} is not yyyy-MM-dd HH:mm:ss`);
    }
    const orderNo = cells[c.orderNo] ?? '';
    if (!orderNo) throw new MalformedMessageError(`${where}: no 商户订单号`);
    rows.push(type === '交易'
      ? { type: 'payment', orderNo, channelTradeNo: cells[c.tradeNo], amount, fee, currency: 'CNY', time, channelStatus: type }
      : { type: 'refund', orderNo, refundNo: cells[c.refundNo] || undefined, channelTradeNo: cells[c.tradeNo], amount, fee: -fee, currency: 'CNY', time, channelStatus: type });
  }
  const problems: StatementProblem[] = [];
  const footer = lines.slice(i).join('\n');
  const payments = rows.filter((r) => r.type === 'payment');
  const refunds = rows.filter((r) => r.type === 'refund');
  const sum = (rs: StatementRow[], f: (r: StatementRow) => number) => rs.reduce((s, r) => s + f(r), 0);
  const trade = /#交易合计：(\d+)笔，商家实收共(-?[\d.]+)元/.exec(footer);
  if (trade && (Number(trade[1]) !== payments.length)) problems.push({ kind: 'total', detail: `交易合计 says ${trade[1]} trades, the file lists ${payments.length}` });
  const refund = /#退款合计：(\d+)笔/.exec(footer);
  if (refund && Number(refund[1]) !== refunds.length) problems.push({ kind: 'total', detail: `退款合计 says ${refund[1]} refunds, the file lists ${refunds.length}` });
  if (summary) {
    const s = summary.split(/\r?\n/);
    const h = s.findIndex((l) => l.startsWith('门店编号'));
    const total = s.find((l) => l.startsWith('合计'));
    if (h >= 0 && total) {
      const head = csvCells(s[h]!).map(clean);
      const cells = csvCells(total).map(clean);
      const feeAt = head.indexOf('服务费（元）');
      if (feeAt >= 0 && cells[feeAt]) {
        const stated = Math.abs(yuanTextToFen(cells[feeAt]!, '业务明细(汇总) 合计 服务费'));
        const listed = sum(rows, (r) => r.fee);
        if (stated !== Math.abs(listed)) problems.push({ kind: 'fee', detail: `汇总 says fees ${stated} fen, the lines add up to ${listed} fen` });
      }
    }
  }
  return { rows, lineCount: rows.length, problems, ...(account ? { account } : {}) };
}
