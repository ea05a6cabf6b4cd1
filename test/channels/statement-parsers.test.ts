import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import iconv from 'iconv-lite';
import { parseAlipayBill } from '../../server/channels/alipay/statement.ts';
import { parseFundFlowBill, parseTradeBill } from '../../server/channels/wechatpay/statement.ts';
import { zipGbk } from '../../server/sandbox/alipay/statement.ts';
import { csvCells, yuanTextToFen } from '../../server/channels/statements.ts';
import { ZM_LINE_BYTES, fileContentOf, fileTransferUrl, parseUnionpayStatement } from '../../server/channels/unionpay/statement.ts';
import { parseTransactionSearch } from '../../server/channels/paypal/statement.ts';
import { parseBalanceTransactions } from '../../server/channels/stripe/statement.ts';

// Fixtures in the channels' recorded formats (test/channels/fixtures/statements): Alipay's
// 业务明细 / 汇总 as GBK CSV (the layout of a 2019-09-16 bill quoted by SDK tests: # header and
// footer lines, tab-padded text cells, 服务费 negative on trades), WeChat Pay's v3 trade and fund
// bills (backtick cells, the summary header and totals line, fees with five decimals).
const fixture = (name: string) => fs.readFileSync(path.join(import.meta.dirname, 'fixtures', 'statements', name));

describe('Alipay trade bill', () => {
  const detail = fixture('alipay_20190916_detail.gbk.csv');
  const summary = fixture('alipay_20190916_summary.gbk.csv');

  it('reads the zip of GBK files (names in GBK, no UTF-8 flag): trades, refunds, fees, times', () => {
    const zip = zipGbk([{ name: '20880211096256330156_20190916_业务明细.csv', data: detail }, { name: '20880211096256330156_20190916_业务明细(汇总).csv', data: summary }]);
    const parsed = parseAlipayBill(zip);
    expect(parsed.account).toBe('20880211096256330156');
    expect(parsed.problems).toEqual([]);
    expect(parsed.rows).toEqual([
      { type: 'payment', orderNo: 'cs_att01', channelTradeNo: '2019091622001458860515315453', amount: 12800, fee: 77, currency: 'CNY', time: Date.UTC(2019, 8, 16, 2, 55, 23) / 1000, channelStatus: '交易' },
      { type: 'refund', orderNo: 'cs_att01', refundNo: 're_01', channelTradeNo: '2019091622001458860515315453', amount: 2800, fee: -17, currency: 'CNY', time: Date.UTC(2019, 8, 16, 2, 56, 48) / 1000, channelStatus: '退款' },
      { type: 'payment', orderNo: 'cs_att02', channelTradeNo: '2019091622001465870515233238', amount: 1, fee: 0, currency: 'CNY', time: Date.UTC(2019, 8, 16, 8, 58, 58) / 1000, channelStatus: '交易' },
    ]);
  });

  it('reads the 业务明细 CSV alone, GBK or re-saved as UTF-8', () => {
    expect(parseAlipayBill(detail).rows).toHaveLength(3);
    const utf8 = Buffer.from(iconv.decode(detail, 'gbk'), 'utf8');
    expect(parseAlipayBill(utf8).rows.map((r) => r.orderNo)).toEqual(['cs_att01', 'cs_att01', 'cs_att02']);
  });

  it('reports a footer or a 汇总 that disagrees with the lines', () => {
    const text = iconv.decode(detail, 'gbk').replace('#交易合计：2笔', '#交易合计：3笔');
    const wrongSummary = iconv.encode(iconv.decode(summary, 'gbk').replace('合计,,2,1,100.01,100.01,0.00,0.00,0.00,-0.60', '合计,,2,1,100.01,100.01,0.00,0.00,0.00,-0.90'), 'gbk');
    const parsed = parseAlipayBill(zipGbk([{ name: 'a.csv', data: iconv.encode(text, 'gbk') }, { name: 'b.csv', data: wrongSummary }]));
    expect(parsed.problems.map((p) => p.kind).sort()).toEqual(['fee', 'total']);
  });

  it('refuses what is not an Alipay bill', () => {
    expect(() => parseAlipayBill(Buffer.from('a,b,c\n1,2,3\n'))).toThrow(/业务明细/);
    expect(() => parseAlipayBill(Buffer.from('PK\x03\x04garbage'))).toThrow(/zip/);
  });
});

describe('WeChat Pay bills', () => {
  const trade = fixture('wechatpay_20190611_tradebill.csv');

  it('reads the trade bill, plain or gzipped: SUCCESS lines are payments, REFUND lines refunds; fees to the fen', () => {
    for (const body of [trade, zlib.gzipSync(trade)]) {
      const parsed = parseTradeBill(body);
      expect(parsed.problems).toEqual([]);
      expect(parsed.account).toBe('1230000109');
      expect(parsed.rows.map((r) => [r.type, r.orderNo, r.refundNo, r.amount, r.fee, r.channelStatus])).toEqual([
        ['payment', 'cs_att11', undefined, 10000, 60, 'SUCCESS'],
        ['payment', 'cs_att12', undefined, 1, 0, 'SUCCESS'],
        ['refund', 'cs_att11', 're_11', 3000, -18, 'REFUND/SUCCESS'],
      ]);
      expect(parsed.rows[0]!.time).toBe(Date.UTC(2019, 5, 11, 2, 0, 1) / 1000);
    }
  });

  it('checks the totals line: the fee total to five decimals, the count, the order total', () => {
    const text = trade.toString('utf8').replace('`3,`100.01,`30.00,`0.00,`0.42006', '`4,`100.01,`30.00,`0.00,`0.42000');
    expect(parseTradeBill(Buffer.from(text)).problems.map((p) => p.kind).sort()).toEqual(['fee', 'total']);
  });

  it('reads the fund-flow bill (counted, totals checked)', () => {
    const parsed = parseFundFlowBill(fixture('wechatpay_20190611_fundflowbill.csv'));
    expect(parsed).toMatchObject({ rows: [], lineCount: 3, problems: [] });
  });

  it('refuses a file without the bill header', () => {
    expect(() => parseTradeBill(Buffer.from('hello'))).toThrow(/交易时间/);
  });
});

describe('UnionPay settlement files (对账文件)', () => {
  // INN<yyMMdd>88ZM_<merId>: fixed-width GBK lines (the widths of the ACP SDK's parseZMFile), one
  // space between fields: a consume, its refund (S31, txnType 04, tied by origQryId), a 0.01
  // consume, and a pre-authorisation (txnType 02) that is no payment.
  const name = 'INN19091688ZM_777290058110097';
  const zm = fixture(`unionpay_${name}`);

  it('reads the zip as the file transfer gives it (fileContent inflated): consumes, refunds by their own orderId, fees D/C', () => {
    const zip = zipGbk([{ name, data: zm }, { name: 'INN19091688ZME_777290058110097', data: Buffer.alloc(0) }]);
    // The wire form: base64 of the deflated zip, which the adapter inflates back to these bytes.
    expect(zlib.inflateSync(Buffer.from(fileContentOf(zip), 'base64')).equals(zip)).toBe(true);
    const parsed = parseUnionpayStatement(zip);
    expect(parsed).toMatchObject({ account: '777290058110097', lineCount: 4, problems: [] });
    expect(parsed.rows).toEqual([
      { type: 'payment', orderNo: 'cs0att01', channelTradeNo: '201909161055230012345', amount: 12800, fee: 77, currency: 'CNY', time: Date.UTC(2019, 8, 16, 2, 55, 23) / 1000, channelStatus: 'S22/01' },
      {
        type: 'refund', orderNo: 'cs0att01', refundNo: 're_01abcdef', channelTradeNo: '201909161055230012345', channelRefundNo: '201909161056480012346',
        amount: 2800, fee: -17, currency: 'CNY', time: Date.UTC(2019, 8, 16, 2, 56, 48) / 1000, channelStatus: 'S31/04',
      },
      { type: 'payment', orderNo: 'cs0att02', channelTradeNo: '201909161658580012347', amount: 1, fee: 0, currency: 'CNY', time: Date.UTC(2019, 8, 16, 8, 58, 58) / 1000, channelStatus: 'S22/01' },
    ]);
  });

  it('fields are cut in bytes, not characters (GBK text in 商户自定义域 keeps the columns after it)', () => {
    const lengths = zm.toString('latin1').split('\r\n').filter(Boolean).map((l) => l.length);
    expect(lengths).toEqual([ZM_LINE_BYTES, ZM_LINE_BYTES, ZM_LINE_BYTES, ZM_LINE_BYTES]);
    expect(parseUnionpayStatement(zm).rows.map((r) => r.amount)).toEqual([12800, 2800, 1]);
  });

  it('refuses what is not a ZM file, and a zip without one', () => {
    expect(() => parseUnionpayStatement(Buffer.from('orderId,txnAmt\r\n1,2\r\n'))).toThrow(/ZM/);
    expect(() => parseUnionpayStatement(zipGbk([{ name: 'INN19091688ZME_777290058110097', data: Buffer.alloc(0) }]))).toThrow(/ZM_/);
  });

  it('posts the file transfer to the file host beside the gateway host; the simulator below its path', () => {
    expect(fileTransferUrl('https://gateway.95516.com')).toBe('https://filedownload.95516.com/');
    expect(fileTransferUrl('https://gateway.test.95516.com')).toBe('https://filedownload.test.95516.com/');
    expect(fileTransferUrl('http://127.0.0.1:4000/sandbox/unionpay')).toBe('http://127.0.0.1:4000/sandbox/unionpay/filedownload/');
  });
});

describe('PayPal Transaction Search', () => {
  const doc = fixture('paypal_20190916_transactions.json');

  it('T0006 payments by invoice_id (S, F), T1107 refunds by custom_field; signed amounts and fees; P and other codes left out', () => {
    const parsed = parseTransactionSearch(doc);
    expect(parsed).toMatchObject({ account: 'XZXSPECPDZHZU', lineCount: 5, problems: [] });
    expect(parsed.rows).toEqual([
      { type: 'payment', orderNo: 'cs_att21', channelTradeNo: '5TY05013RG002845M', amount: 12800, fee: 401, currency: 'USD', time: Date.UTC(2019, 8, 16, 2, 55, 23) / 1000, channelStatus: 'T0006/F' },
      {
        type: 'refund', orderNo: 'cs_att21', refundNo: 're_21', channelTradeNo: '5TY05013RG002845M', channelRefundNo: '1FN09943JY662130R',
        amount: 2800, fee: -81, currency: 'USD', time: Date.UTC(2019, 8, 16, 2, 56, 48) / 1000, channelStatus: 'T1107/S',
      },
      { type: 'payment', orderNo: 'cs_att22', channelTradeNo: '7YD27468LF384593K', amount: 1500, fee: 92, currency: 'JPY', time: Date.UTC(2019, 8, 16, 8, 58, 58) / 1000, channelStatus: 'T0006/S' },
    ]);
  });

  it('reports a total_items that is not the transactions it holds; refuses what is not a search answer', () => {
    const text = doc.toString('utf8').replace('"total_items": 5', '"total_items": 7');
    expect(parseTransactionSearch(Buffer.from(text)).problems.map((p) => p.kind)).toEqual(['total']);
    expect(() => parseTransactionSearch(Buffer.from('{"items":[]}'))).toThrow(/transaction_details/);
    expect(() => parseTransactionSearch(Buffer.from('date,amount'))).toThrow(/JSON/);
  });
});

describe('Stripe balance transactions', () => {
  const doc = fixture('stripe_20190916_balance_transactions.json');

  it('charges and refunds with their expanded source: order_no and refund_no from metadata, the source\'s amount, the fee of the balance', () => {
    const parsed = parseBalanceTransactions(doc);
    expect(parsed).toMatchObject({ lineCount: 4, problems: [] });
    expect(parsed.rows).toEqual([
      {
        type: 'refund', orderNo: 'cs_att31', refundNo: 're_31', channelTradeNo: 'pi_1FJ4l22eZvKYlo2CLxMJp6aT', channelRefundNo: 're_1FJ4mZ2eZvKYlo2C9d9Q2hVb',
        amount: 2800, fee: 0, currency: 'USD', time: 1568602608, channelStatus: 'refund/pending',
      },
      { type: 'payment', orderNo: 'cs_att31', channelTradeNo: 'pi_1FJ4l22eZvKYlo2CLxMJp6aT', amount: 12800, fee: 401, currency: 'USD', time: 1568602523, channelStatus: 'charge/pending' },
      // Paid in yen, settled in dollars: the amount matched is the yen the buyer paid; the fee (72 cents) in yen at the line's rate.
      { type: 'payment', orderNo: 'cs_att32', channelTradeNo: 'pi_1FJ4k82eZvKYlo2C3bKxv1Zd', amount: 1500, fee: 76, currency: 'JPY', time: 1568600000, channelStatus: 'charge/available' },
    ]);
  });

  it('refuses what is not a list of balance transactions', () => {
    expect(() => parseBalanceTransactions(Buffer.from('{"object":"charge"}'))).toThrow(/list/);
    expect(() => parseBalanceTransactions(Buffer.from('{"object":"list","data":[{"object":"charge"}]}'))).toThrow(/balance_transaction/);
  });
});

describe('shared helpers', () => {
  it('CSV cells with quotes; yuan text to fen with half-up rounding of extra decimals', () => {
    expect(csvCells('a,"b,c","d""e",')).toEqual(['a', 'b,c', 'd"e', '']);
    expect(yuanTextToFen('-0.06', 'x')).toBe(-6);
    expect(yuanTextToFen('0.00500', 'x')).toBe(1);
    expect(yuanTextToFen('0.00499', 'x')).toBe(0);
    expect(yuanTextToFen('12', 'x')).toBe(1200);
    expect(() => yuanTextToFen('1e3', 'x')).toThrow();
  });
});
