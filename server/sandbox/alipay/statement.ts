/**
 * The Alipay simulator's bills (对账单): alipay.data.dataservice.bill.downloadurl.query answers a
 * bill_download_url like Alipay's (downloadBillFile.resource?bizType=trade&userId=<pid>0156&
 * fileType=csv.zip&bizDates=yyyyMMdd&downloadFileName=…&timestamp=…&token=…, dead after 30 s),
 * and that URL serves a zip of two GBK CSV files (业务明细 and 业务明细(汇总)) written from the
 * trades paid and refunds made at the simulator that Beijing day, with a fee of 0.6%.
 * Format: see channels/alipay/statement.ts. Differences from Alipay: today's bill is served too
 * (Alipay serves a day's bill from the next morning; tests cannot wait), 门店/操作员/对方账户 are
 * empty, and there are no discounts (红包, 集分宝, 商家优惠 are 0.00).
 */
import zlib from 'node:zlib';
import express from 'express';
import iconv from 'iconv-lite';
import type { SandboxDeps } from '../types.ts';
import { beijingTime, fenToYuan } from '../../channels/alipay/transform.ts';
import { beijingDay, readStatementToken, sandboxFee, statementToken } from '../statement-token.ts';
import { findMerchant, type OrderData, type SandboxMerchant } from './store.ts';
import { businessFailure, type GatewayAnswer } from './gateway.ts';

export const BILL_METHOD = 'alipay.data.dataservice.bill.downloadurl.query';
const LINK_TTL_S = 30;
const HEADER = '支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注';
const SUMMARY_HEADER = '门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）';

/** The bill's account: Alipay writes the partner id followed by 0156. */
const billUser = (m: SandboxMerchant) => `${m.sellerId}0156`;

/** alipay.data.dataservice.bill.downloadurl.query: a download link for a day that has trades. */
export async function runBillQuery(deps: SandboxDeps, merchant: SandboxMerchant, biz: Record<string, unknown>): Promise<GatewayAnswer> {
  const billType = typeof biz.bill_type === 'string' ? biz.bill_type : '';
  const billDate = typeof biz.bill_date === 'string' ? biz.bill_date : '';
  if (billType !== 'trade' && billType !== 'signcustomer') return businessFailure('isv.invalid-parameter', '参数不合法 (bill_type must be trade or signcustomer)');
  // Only daily trade bills are simulated; a month (yyyy-MM) or the account bill answers "no bill".
  if (billType === 'signcustomer' || /^\d{4}-\d{2}$/.test(billDate)) return businessFailure('isp.bill_not_exist', '账单不存在 (the simulator publishes daily trade bills only)');
  const day = beijingDay(billDate);
  if (!day) return businessFailure('isv.invalid-parameter', '参数不合法 (bill_date must be yyyy-MM-dd)');
  if (day.start > Date.now() / 1000) return businessFailure('isv.invalid-parameter', '参数不合法 (bill_date is in the future)');
  const lines = await billLines(deps, merchant, day);
  if (lines.length === 0) return businessFailure('isp.bill_not_exist', '账单不存在');
  const now = Math.floor(Date.now() / 1000);
  const stamp = billDate.replace(/-/g, '');
  const q = new URLSearchParams({
    bizType: 'trade', userId: billUser(merchant), fileType: 'csv.zip', bizDates: stamp, downloadFileName: `${billUser(merchant)}_${stamp}.csv.zip`,
    timestamp: String(now * 1000), token: statementToken(deps.masterKey, { m: merchant.appId, d: billDate, k: 'trade', e: now + LINK_TTL_S }),
  });
  return { code: '10000', msg: 'Success', bill_download_url: `${deps.publicUrl}/sandbox/alipay/bill/downloadBillFile.resource?${q}` };
}

/** GET /sandbox/alipay/bill/downloadBillFile.resource: the zip, for a live link. */
export function createAlipayBillRouter(deps: SandboxDeps): express.Router {
  const router = express.Router();
  router.get('/downloadBillFile.resource', async (req, res) => {
    const token = typeof req.query.token === 'string' ? req.query.token : '';
    const ticket = readStatementToken(deps.masterKey, token);
    // Alipay's answer to a stale link is a page saying 下载超时，请重新下载.
    if (!ticket) return res.status(403).type('text/plain; charset=utf-8').send('下载超时，请重新下载 (the link is older than 30 s or not genuine)');
    const merchant = await findMerchant(deps.db, deps.masterKey, ticket.m);
    const day = beijingDay(ticket.d);
    if (!merchant || !day) return res.status(404).type('text/plain; charset=utf-8').send('账单不存在');
    const zip = await alipayBillZip(deps, merchant, ticket.d, day);
    res.status(200).type('application/octet-stream').set('Content-Disposition', `attachment; filename="${billUser(merchant)}_${ticket.d.replace(/-/g, '')}.csv.zip"`).send(zip);
  });
  return router;
}

interface BillLine {
  tradeNo: string;
  outTradeNo: string;
  type: '交易' | '退款';
  subject: string;
  created: number;
  done: number;
  amount: number;
  refundNo: string;
  fee: number;
}

/** The day's 交易 lines (trades paid that day) and 退款 lines (refunds made that day), in time order. */
async function billLines(deps: SandboxDeps, merchant: SandboxMerchant, day: { start: number; end: number }): Promise<BillLine[]> {
  // A trade is created before it is paid; a week back covers any trade's payment window.
  const orders = await deps.db('sandbox_orders')
    .where({ provider: 'alipay', merchant_id: merchant.appId })
    .where('created', '>=', day.start - 7 * 86_400)
    .where('created', '<', day.end)
    .select('out_trade_no', 'trade_no', 'amount', 'data');
  const byNo = new Map<string, { tradeNo: string; amount: number; data: OrderData }>();
  const lines: BillLine[] = [];
  for (const o of orders) {
    const data = JSON.parse(o.data) as OrderData;
    byNo.set(o.out_trade_no, { tradeNo: o.trade_no, amount: Number(o.amount), data });
    const paid = data.gmtPayment;
    if (paid === undefined || paid < day.start || paid >= day.end) continue;
    const amount = Number(o.amount);
    lines.push({ tradeNo: o.trade_no, outTradeNo: o.out_trade_no, type: '交易', subject: data.subject, created: data.gmtCreate, done: paid, amount, refundNo: '', fee: -sandboxFee(amount) });
  }
  const refunds = await deps.db('sandbox_refunds')
    .where({ provider: 'alipay', merchant_id: merchant.appId })
    .where('created', '>=', day.start)
    .where('created', '<', day.end)
    .select('out_trade_no', 'out_refund_no', 'amount', 'created');
  for (const r of refunds) {
    let order = byNo.get(r.out_trade_no);
    if (!order) {
      const row = await deps.db('sandbox_orders').where({ provider: 'alipay', merchant_id: merchant.appId, out_trade_no: r.out_trade_no }).first('trade_no', 'amount', 'data');
      if (!row) continue;
      order = { tradeNo: row.trade_no, amount: Number(row.amount), data: JSON.parse(row.data) as OrderData };
    }
    const amount = Number(r.amount);
    lines.push({
      tradeNo: order.tradeNo, outTradeNo: r.out_trade_no, type: '退款', subject: order.data.subject, created: order.data.gmtCreate, done: Number(r.created),
      amount: -amount, refundNo: r.out_refund_no, fee: sandboxFee(amount),
    });
  }
  return lines.sort((a, b) => a.done - b.done || a.tradeNo.localeCompare(b.tradeNo));
}

/** Signed yuan with two decimals ("-0.06"). */
const yuan = (fen: number) => (fen < 0 ? `-${fenToYuan(-fen)}` : fenToYuan(fen));
/** A text cell as Alipay writes it: a trailing tab keeps Excel from reading it as a number. */
const tabbed = (s: string) => `${s}\t`;
/** Commas and quotes in a subject would break the line: Alipay's files quote nothing, so they are replaced. */
const plain = (s: string) => s.replace(/[,"\r\n]/g, ' ');

function cnDate(unix: number): string {
  const t = beijingTime(unix);
  return `${t.slice(0, 4)}年${t.slice(5, 7)}月${t.slice(8, 10)}日 ${t.slice(11)}`;
}

/** The two CSV files of a day, as text (encoded to GBK by the zip). */
export async function alipayBillFiles(deps: SandboxDeps, merchant: SandboxMerchant, date: string, day: { start: number; end: number }): Promise<{ detail: string; summary: string }> {
  const lines = await billLines(deps, merchant, day);
  const head = (title: string, list: string) => [
    title,
    `#账号：[${billUser(merchant)}]`,
    `#起始日期：[${cnDate(day.start)}]   终止日期：[${cnDate(day.end)}]`,
    `#-----------------------------------------${list}----------------------------------------`,
  ];
  const trades = lines.filter((l) => l.type === '交易');
  const refunds = lines.filter((l) => l.type === '退款');
  const total = (ls: BillLine[], f: (l: BillLine) => number) => ls.reduce((s, l) => s + f(l), 0);
  const exported = `#导出时间：[${cnDate(Math.floor(Date.now() / 1000))}]`;
  const detail = [
    ...head('#支付宝业务明细查询', '业务明细列表'),
    HEADER,
    ...lines.map((l) => [
      tabbed(l.tradeNo), tabbed(l.outTradeNo), tabbed(l.type), plain(l.subject), beijingTime(l.created), beijingTime(l.done),
      tabbed(''), tabbed(''), tabbed(''), tabbed(''), tabbed(''), yuan(l.amount), yuan(l.amount), '0.00', '0.00', '0.00', '0.00', '0.00', '',
      tabbed('0.00'), '0.00', tabbed(l.refundNo), yuan(l.fee), '0.00', plain(l.subject),
    ].join(',')),
    '#-----------------------------------------业务明细列表结束------------------------------------',
    `#交易合计：${trades.length}笔，商家实收共${yuan(total(trades, (l) => l.amount))}元，商家优惠共0.00元`,
    `#退款合计：${refunds.length}笔，商家实收退款共${yuan(total(refunds, (l) => l.amount))}元，商家优惠退款共0.00元`,
    exported,
  ].join('\r\n') + '\r\n';
  const gross = total(lines, (l) => l.amount);
  const fees = total(lines, (l) => l.fee);
  const sums = [String(trades.length), String(refunds.length), yuan(gross), yuan(gross), '0.00', '0.00', '0.00', yuan(fees), '0.00', yuan(gross + fees)];
  const summary = [
    ...head('#支付宝业务汇总查询', '业务汇总列表'),
    SUMMARY_HEADER,
    ['', '', ...sums].join(','),
    ['合计', '', ...sums].join(','),
    '#-----------------------------------------业务汇总列表结束------------------------------------',
    exported,
  ].join('\r\n') + '\r\n';
  return { detail, summary };
}

async function alipayBillZip(deps: SandboxDeps, merchant: SandboxMerchant, date: string, day: { start: number; end: number }): Promise<Buffer> {
  const { detail, summary } = await alipayBillFiles(deps, merchant, date, day);
  const base = `${billUser(merchant)}_${date.replace(/-/g, '')}`;
  return zipGbk([
    { name: `${base}_业务明细.csv`, data: iconv.encode(detail, 'gbk') },
    { name: `${base}_业务明细(汇总).csv`, data: iconv.encode(summary, 'gbk') },
  ]);
}

/**
 * A zip (PKWARE APPNOTE 4.3: local headers, deflated data, central directory, end record) whose
 * names are GBK bytes without the UTF-8 flag (bit 11), as Alipay's bill zips are.
 */
export function zipGbk(files: Array<{ name: string; data: Buffer }>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const f of files) {
    const name = iconv.encode(f.name, 'gbk');
    const packed = zlib.deflateRawSync(f.data);
    const crc = zlib.crc32(f.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0, 6); // flags: no UTF-8 bit
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt16LE(0, 10); // time
    local.writeUInt16LE(0x21, 12); // date 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(packed.length, 18);
    local.writeUInt32LE(f.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, name, packed);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(packed.length, 20);
    central.writeUInt32LE(f.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += local.length + name.length + packed.length;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}
