import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { ConsoleClient } from '../support/console.ts';
import { createApp, type CreatedApp } from '../../server/apps/service.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { beijingRange } from '../../server/dashboard/format.ts';

// The CSV once stopped at 100,000 payments (and held every refund), so its totals disagreed with
// the summary page. This month has more payments than that and more refunds than one read takes,
// many of them in the same second, plus rows that must stay out: other days, modes, apps, statuses.
const PAYMENTS = 102_000;
const REFUNDS = 2_600;
const FROM = '2025-03-01';
const TO = '2025-03-03';
const PASSWORD = 'a long enough passphrase';

let g: TestGateway;
let shop: CreatedApp;
let other: CreatedApp;
const range = beijingRange(FROM, TO)!;

async function insertRows(table: string, rows: Record<string, unknown>[]) {
  await g.deps.db.batchInsert(table, rows, 500);
}

/** Rows as the gateway stores them: a succeeded payment, its paying attempt, and maybe a refund. */
async function seed(app: CreatedApp, n: number, refunds: number, opts: { livemode?: boolean; at?: (i: number) => number; refundAt?: (i: number) => number; prefix: string }) {
  const payments: Record<string, unknown>[] = [];
  const attempts: Record<string, unknown>[] = [];
  const refundRows: Record<string, unknown>[] = [];
  const livemode = opts.livemode ?? false;
  for (let i = 0; i < n; i++) {
    // Bursts: 40 payments share each second, so batch boundaries fall inside a second.
    const paidAt = opts.at ? opts.at(i) : range.start + 30 + Math.floor(i / 40) * 7;
    const id = `pay_${opts.prefix}${String(i).padStart(7, '0')}`;
    const channel = i % 3 === 0 ? 'wechat_native' : 'alipay_pc';
    const currency = i % 50 === 0 ? 'USD' : 'CNY';
    const status = i % 97 === 0 ? 'closed' : 'succeeded';
    payments.push({
      id, app_id: app.app_id, livemode, out_trade_no: `${opts.prefix}${i}`, amount: 100 + (i % 1000), currency, subject: 'Tea', channel, status,
      amount_refunded: 0, channel_trade_no: status === 'succeeded' ? `T${opts.prefix}${i}` : null, paid_at: status === 'succeeded' ? paidAt : null,
      expires_at: paidAt + 7200, metadata: '{}', checkout_token: `tok_${opts.prefix}${i}`, created: paidAt - 20, updated_ms: paidAt * 1000,
    });
    attempts.push({
      id: `att_${opts.prefix}${i}`, payment_id: id, app_id: app.app_id, livemode, channel, provider: channel.startsWith('alipay') ? 'alipay' : 'wechatpay',
      channel_order_no: `O${opts.prefix}${i}`, status: status === 'succeeded' ? 'succeeded' : 'failed', channel_trade_no: status === 'succeeded' ? `T${opts.prefix}${i}` : null,
      created: paidAt - 10, updated_ms: paidAt * 1000,
    });
    if (i < refunds && status === 'succeeded') {
      refundRows.push({
        id: `re_${opts.prefix}${String(i).padStart(7, '0')}`, payment_id: id, attempt_id: `att_${opts.prefix}${i}`, app_id: app.app_id, livemode, channel, currency,
        amount: 10 + (i % 90), status: i % 41 === 0 ? 'failed' : 'succeeded', out_refund_no: `R${opts.prefix}${i}`, automatic: i % 53 === 0,
        // Refunds come in bursts too, a day after the payments start.
        created: opts.refundAt ? opts.refundAt(i) : range.start + 86_400 + Math.floor(i / 25), updated_ms: Date.now(),
      });
    }
  }
  await insertRows('payments', payments);
  await insertRows('payment_attempts', attempts);
  await insertRows('refunds', refundRows);
}

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  shop = await createApp(g.deps.db, { name: 'Busy Shop' });
  other = await createApp(g.deps.db, { name: 'Other Shop' });
  await createConsoleUser(g.deps.db, { email: 'busy@test.example', appId: shop.app_id, password: PASSWORD });
  await seed(shop, PAYMENTS, REFUNDS, { prefix: 'a' });
  // Outside the range (the day before and the day after), in live mode, and another app's.
  await seed(shop, 300, 50, { prefix: 'b', at: (i) => (i % 2 ? range.start - 1 - i : range.end + i), refundAt: (i) => range.end + 60 + i });
  await seed(shop, 300, 50, { prefix: 'c', livemode: true });
  await seed(other, 300, 50, { prefix: 'd' });
}, 120_000);
afterAll(async () => {
  await g?.close();
});

interface Totals {
  payments: { count: number; sum: number };
  refunds: { count: number; sum: number };
  net: number;
}

describe('reconciliation CSV', () => {
  it('streams every payment and refund of the range, and its totals equal the summary page', async () => {
    const c = new ConsoleClient(g.url);
    expect((await c.login('busy@test.example', PASSWORD)).status).toBe(303);

    const page = await c.get(`/console/reconciliation?from=${FROM}&to=${TO}`);
    expect(page.status).toBe(200);
    const summary = new Map<string, Totals>();
    for (const m of page.text.matchAll(/<tr data-channel="([^"]+)" data-currency="([^"]+)">([\s\S]*?)<\/tr>/g)) {
      const row = m[3];
      const num = (re: RegExp) => Number(re.exec(row)![1]);
      summary.set(`${m[1]} ${m[2]}`, {
        payments: { count: num(/data-payments-count>(\d+)</), sum: num(/data-payments-sum="(-?\d+)"/) },
        refunds: { count: num(/data-refunds-count>(\d+)</), sum: num(/data-refunds-sum="(-?\d+)"/) },
        net: num(/data-net="(-?\d+)"/),
      });
    }
    expect(summary.size).toBe(4);

    const csv = await c.get(`/console/reconciliation/transactions.csv?from=${FROM}&to=${TO}`);
    expect(csv.status).toBe(200);
    const lines = csv.text.replace(/^\uFEFF/, '').split('\r\n');
    expect(lines.pop()).toBe('');
    const header = lines.shift()!.split(',');
    const col = (name: string) => header.indexOf(name);

    const fromCsv = new Map<string, Totals>();
    const ids = new Set<string>();
    let previous = '';
    const counted = { payment: 0, refund: 0 };
    for (const line of lines) {
      const cells = line.split(',');
      const [type, id] = [cells[col('type')], cells[col('id')]];
      ids.add(id);
      // Oldest first ("YYYY-MM-DD HH:MM:SS" sorts as text).
      expect(cells[col('time_beijing')] >= previous).toBe(true);
      previous = cells[col('time_beijing')];
      const t = fromCsv.get(`${cells[col('channel')]} ${cells[col('currency')]}`) ?? { payments: { count: 0, sum: 0 }, refunds: { count: 0, sum: 0 }, net: 0 };
      fromCsv.set(`${cells[col('channel')]} ${cells[col('currency')]}`, t);
      const minor = Number(cells[col('amount_minor')]);
      if (type === 'payment') {
        counted.payment++;
        t.payments.count++;
        t.payments.sum += minor;
        t.net += minor;
      } else {
        counted.refund++;
        // Automatic refunds return a duplicate payment: outside the net, as on the page.
        if (cells[col('automatic')] === 'true') continue;
        t.refunds.count++;
        t.refunds.sum -= minor;
        t.net += minor;
      }
    }
    expect(ids.size).toBe(lines.length);
    const expectedPayments = Array.from({ length: PAYMENTS }, (_, i) => i).filter((i) => i % 97 !== 0).length;
    const expectedRefunds = Array.from({ length: REFUNDS }, (_, i) => i).filter((i) => i % 97 !== 0 && i % 41 !== 0).length;
    expect(counted).toEqual({ payment: expectedPayments, refund: expectedRefunds });
    expect(Object.fromEntries(fromCsv)).toEqual(Object.fromEntries(summary));
    // Streamed: no length known up front.
    expect(csv.headers.get('content-length')).toBeNull();
    expect(csv.headers.get('transfer-encoding')).toBe('chunked');
  }, 120_000);
});
