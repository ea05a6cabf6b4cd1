/**
 * The WeChat Pay simulator's bills: GET /v3/bill/tradebill and /v3/bill/fundflowbill answer
 * `{hash_type:"SHA1", hash_value, download_url}` (signed, like every v3 answer), and
 * GET /v3/billdownload/file?token=… (signed request, unsigned answer) serves the bill, gzipped
 * when tar_type=GZIP was asked. The bills are written from the orders paid and refunds completed
 * at the simulator that Beijing day, with a 0.6% fee (费率 0.60%). Format: see
 * channels/wechatpay/statement.ts. Differences from WeChat: today's bill is served too (WeChat
 * publishes a day's bill from 10:00 the next day), 付款银行 is OTHERS, there are no coupons
 * (代金券 0.00), and the fund bill's balance starts at zero each day.
 */
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import express, { type Request, type RequestHandler } from 'express';
import type { SandboxDeps } from '../types.ts';
import { beijingDay, readStatementToken, sandboxFee, statementToken } from '../statement-token.ts';
import { beijingTime } from '../../channels/alipay/transform.ts';
import type { OrderData, SandboxMerchant } from './store.ts';
import type { Answer } from './orders.ts';
import { v3Error, yuanText } from './wire.ts';

type Run = (fn: (auth: { merchant: SandboxMerchant; body: Record<string, unknown> }, req: Request) => Promise<Answer>) => RequestHandler;

const LINK_TTL_S = 30;
const TRADE_HEADER = '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注';
const TRADE_SUMMARY = '总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额';
const FUND_HEADER = '记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,账户结余（元）,资金变更提交申请人,备注,业务凭证号';
const FUND_SUMMARY = '资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额';

/** The bill endpoints, mounted inside the v3 router (its Authorization check runs first). */
export function createWechatpayBillRouter(deps: SandboxDeps, run: Run): express.Router {
  const router = express.Router();
  const link = (kind: 'trade' | 'fundflow') => run(async ({ merchant }, req) => {
    const q = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const date = q.get('bill_date') ?? '';
    const day = beijingDay(date);
    if (!day) return v3Error(400, 'PARAM_ERROR', '输入源“/query/bill_date”映射到字段“bill_date”校验失败 (bill_date must be yyyy-MM-dd)');
    if (day.start > Date.now() / 1000) return v3Error(400, 'INVALID_REQUEST', '账单日期不能晚于今天 (bill_date is in the future)');
    const billType = q.get('bill_type') ?? 'ALL';
    if (kind === 'trade' && billType !== 'ALL' && billType !== 'SUCCESS' && billType !== 'REFUND') return v3Error(400, 'PARAM_ERROR', 'bill_type must be ALL, SUCCESS or REFUND');
    const accountType = q.get('account_type') ?? 'BASIC';
    if (kind === 'fundflow' && accountType !== 'BASIC') return v3Error(400, 'NO_STATEMENT_EXIST', '账单文件不存在 (the simulator keeps the BASIC account only)');
    const tar = q.get('tar_type');
    if (tar !== null && tar !== 'GZIP') return v3Error(400, 'PARAM_ERROR', 'tar_type must be GZIP or absent');
    const bill = await billText(deps, merchant, day, kind, billType);
    if (!bill) return v3Error(400, 'NO_STATEMENT_EXIST', '账单文件不存在');
    const token = statementToken(deps.masterKey, { m: merchant.mchid, d: date, k: kind === 'trade' ? `trade:${billType}` : 'fundflow', z: tar === 'GZIP', e: Math.floor(Date.now() / 1000) + LINK_TTL_S });
    return {
      status: 200,
      body: {
        hash_type: 'SHA1',
        // The digest of the bill itself (WeChat: of the original file; a gzip is decompressed first).
        hash_value: crypto.createHash('sha1').update(bill).digest('hex'),
        download_url: `${deps.publicUrl}/sandbox/wechatpay/v3/billdownload/file?token=${token}`,
      },
    };
  });
  router.get('/bill/tradebill', link('trade'));
  router.get('/bill/fundflowbill', link('fundflow'));
  router.get('/billdownload/file', async (req, res, next) => {
    const merchant = (res.locals.wechatpay as { merchant: SandboxMerchant }).merchant;
    const ticket = readStatementToken(deps.masterKey, typeof req.query.token === 'string' ? req.query.token : '');
    const day = ticket && beijingDay(ticket.d);
    if (!ticket || !day || ticket.m !== merchant.mchid) return next(); // the v3 router's 404 (signed JSON)
    const [kind, billType] = ticket.k.split(':') as ['trade' | 'fundflow', string | undefined];
    const bill = (await billText(deps, merchant, day, kind, billType ?? 'ALL')) ?? Buffer.alloc(0);
    // The file, unsigned: WeChat signs no download; the merchant checks hash_value.
    res.status(200).type('application/octet-stream').send(ticket.z ? zlib.gzipSync(bill) : bill);
  });
  return router;
}

interface TradeLine {
  time: number;
  appid: string;
  transactionId: string;
  outTradeNo: string;
  openid: string;
  tradeType: string;
  refund?: { refundId: string; outRefundNo: string; amount: number };
  total: number;
  description: string;
  attach: string;
  fee: number;
}

/** The day's lines: each payment that succeeded that day, each refund that completed that day. */
async function tradeLines(deps: SandboxDeps, merchant: SandboxMerchant, day: { start: number; end: number }): Promise<TradeLine[]> {
  const orders = await deps.db('sandbox_orders')
    .where({ provider: 'wechatpay', merchant_id: merchant.mchid })
    .where('created', '>=', day.start - 7 * 86_400)
    .where('created', '<', day.end)
    .select('out_trade_no', 'amount', 'data');
  const byNo = new Map<string, { amount: number; data: OrderData }>();
  const lines: TradeLine[] = [];
  for (const o of orders) {
    const d = JSON.parse(o.data) as OrderData;
    const amount = Number(o.amount);
    byNo.set(o.out_trade_no, { amount, data: d });
    if (d.successTime === undefined || d.successTime < day.start || d.successTime >= day.end) continue;
    lines.push({
      time: d.successTime, appid: d.appid, transactionId: d.transactionId ?? '', outTradeNo: o.out_trade_no, openid: d.payerOpenid ?? '', tradeType: d.tradeType,
      total: amount, description: d.description, attach: d.attach ?? '', fee: sandboxFee(amount),
    });
  }
  const refunds = await deps.db('sandbox_refunds')
    .where({ provider: 'wechatpay', merchant_id: merchant.mchid, status: 'SUCCESS' })
    .where('created', '>=', day.start - 7 * 86_400)
    .where('created', '<', day.end)
    .select('out_trade_no', 'out_refund_no', 'refund_no', 'amount', 'data', 'created');
  for (const r of refunds) {
    const rd = JSON.parse(r.data) as { successTime?: number };
    const done = rd.successTime ?? Number(r.created);
    if (done < day.start || done >= day.end) continue;
    let order = byNo.get(r.out_trade_no);
    if (!order) {
      const row = await deps.db('sandbox_orders').where({ provider: 'wechatpay', merchant_id: merchant.mchid, out_trade_no: r.out_trade_no }).first('amount', 'data');
      if (!row) continue;
      order = { amount: Number(row.amount), data: JSON.parse(row.data) as OrderData };
    }
    const amount = Number(r.amount);
    lines.push({
      time: done, appid: order.data.appid, transactionId: order.data.transactionId ?? '', outTradeNo: r.out_trade_no, openid: order.data.payerOpenid ?? '',
      tradeType: order.data.tradeType, refund: { refundId: r.refund_no, outRefundNo: r.out_refund_no, amount }, total: order.amount,
      description: order.data.description, attach: order.data.attach ?? '', fee: -sandboxFee(amount),
    });
  }
  return lines.sort((a, b) => a.time - b.time || a.outTradeNo.localeCompare(b.outTradeNo));
}

/** A cell as WeChat writes it: a leading backtick; commas in free text would split the line, so they go. */
const cell = (s: string | number) => `\`${String(s).replace(/[,\r\n]/g, ' ')}`;
/** Yuan with the sign, two decimals. */
const signed = (fen: number) => (fen < 0 ? `-${yuanText(-fen)}` : yuanText(fen));
/** Fees with WeChat's five decimals. */
const fee5 = (fen: number) => `${signed(fen)}000`;

/** The bill's bytes (UTF-8 CSV), or undefined when the day has nothing (NO_STATEMENT_EXIST). */
async function billText(deps: SandboxDeps, merchant: SandboxMerchant, day: { start: number; end: number }, kind: 'trade' | 'fundflow', billType: string): Promise<Buffer | undefined> {
  const all = await tradeLines(deps, merchant, day);
  const lines = all.filter((l) => billType === 'ALL' || (billType === 'REFUND') === Boolean(l.refund));
  if (lines.length === 0) return undefined;
  const sum = (f: (l: TradeLine) => number) => lines.reduce((s, l) => s + f(l), 0);
  if (kind === 'trade') {
    const text = [
      TRADE_HEADER,
      ...lines.map((l) => [
        beijingTime(l.time), l.appid, merchant.mchid, '0', '', l.transactionId, l.outTradeNo, l.openid, l.tradeType, l.refund ? 'REFUND' : 'SUCCESS', 'OTHERS', 'CNY',
        yuanText(l.refund ? 0 : l.total), '0.00', l.refund?.refundId ?? '0', l.refund?.outRefundNo ?? '0', yuanText(l.refund?.amount ?? 0), '0.00',
        l.refund ? 'ORIGINAL' : '', l.refund ? 'SUCCESS' : '', l.description, l.attach, fee5(l.fee), '0.60%', yuanText(l.total), yuanText(l.refund?.amount ?? 0), '',
      ].map(cell).join(',')),
      TRADE_SUMMARY,
      [
        lines.length, yuanText(sum((l) => (l.refund ? 0 : l.total))), yuanText(sum((l) => l.refund?.amount ?? 0)), '0.00', fee5(sum((l) => l.fee)),
        yuanText(sum((l) => (l.refund ? 0 : l.total))), yuanText(sum((l) => l.refund?.amount ?? 0)),
      ].map(cell).join(','),
    ].join('\r\n') + '\r\n';
    return Buffer.from(text, 'utf8');
  }
  // 资金账单: each payment is income and its fee an expense; each refund an expense and its fee returned.
  let balance = 0;
  const flows: string[] = [];
  const flow = (l: TradeLine, name: string, income: boolean, amount: number, voucher: string) => {
    balance += income ? amount : -amount;
    flows.push([
      beijingTime(l.time), l.refund ? l.refund.refundId : l.transactionId, `${merchant.mchid}${String(flows.length + 1).padStart(12, '0')}`, name, name,
      income ? '收入' : '支出', yuanText(amount), signed(balance), 'system', '', voucher,
    ].map(cell).join(','));
  };
  for (const l of lines) {
    if (l.refund) {
      flow(l, '退款', false, l.refund.amount, l.refund.outRefundNo);
      if (l.fee) flow(l, '退还交易手续费', true, -l.fee, l.refund.outRefundNo);
    } else {
      flow(l, '交易', true, l.total, l.outTradeNo);
      if (l.fee) flow(l, '扣除交易手续费', false, l.fee, l.outTradeNo);
    }
  }
  const incomes = flows.filter((f) => f.includes(',`收入,'));
  const incomeSum = lines.reduce((s, l) => s + (l.refund ? -l.fee : l.total), 0);
  const expenseSum = lines.reduce((s, l) => s + (l.refund ? l.refund.amount : l.fee), 0);
  const text = [
    FUND_HEADER, ...flows, FUND_SUMMARY,
    [flows.length, incomes.length, yuanText(incomeSum), flows.length - incomes.length, yuanText(expenseSum)].map(cell).join(','),
  ].join('\r\n') + '\r\n';
  return Buffer.from(text, 'utf8');
}
