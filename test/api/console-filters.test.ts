import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createApp, type CreatedApp } from '../../server/apps/service.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { beijingMidnight } from '../../server/dashboard/format.ts';
import { ConsoleClient } from '../support/console.ts';

// The payments list's created-date (Beijing days) and amount (yuan) filters, with status,
// channel, search and the cursor pages.
let g: TestGateway;
let app: CreatedApp;
let c: ConsoleClient;
const PASSWORD = 'a long enough passphrase';
const ids: Record<string, string> = {};

const shown = (t: string) => [...t.matchAll(/data-payment-id="([^"]+)"/g)].map((m) => m[1]);
const at = (date: string, hh: number, mm = 0) => beijingMidnight(date)! + hh * 3600 + mm * 60;

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  app = await createApp(g.deps.db, { name: 'Filter Shop' });
  await createConsoleUser(g.deps.db, { email: 'filters@test.example', appId: app.app_id, password: PASSWORD });
  // name: [amount in fen, Beijing created time, status, channel]
  const rows: Array<[string, number, number, string, string | null]> = [
    ['feb28_late', 1000, at('2025-02-28', 23, 59), 'pending', null],
    ['mar01_start', 1234, at('2025-03-01', 0, 0), 'succeeded', 'alipay_pc'],
    ['mar01_noon', 5000, at('2025-03-01', 12), 'closed', 'wechat_native'],
    ['mar02_late', 12345, at('2025-03-02', 23, 59), 'succeeded', 'alipay_pc'],
    ['mar03_start', 99, at('2025-03-03', 0, 0), 'succeeded', 'alipay_pc'],
  ];
  for (const [name, amount, created, status, channel] of rows) {
    const res = await fetch(`${g.url}/v1/payments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${app.secret_key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount, subject: name, out_trade_no: `flt_${name}` }),
    });
    const p = (await res.json()) as any;
    await g.deps.db('payments').where({ id: p.id }).update({ created, status, channel });
    ids[name] = p.id;
  }
  c = new ConsoleClient(g.url);
  expect((await c.login('filters@test.example', PASSWORD)).status).toBe(303);
});
afterAll(async () => {
  await g?.close();
});

const list = async (query: string) => {
  const res = await c.get(`/console/payments?${query}`);
  expect(res.status).toBe(200);
  return shown(res.text);
};
const named = (...names: string[]) => names.map((n) => ids[n]);

describe('console payments filters', () => {
  it('created from/to are Beijing days, both included', async () => {
    expect(await list('from=2025-03-01&to=2025-03-02')).toEqual(named('mar02_late', 'mar01_noon', 'mar01_start'));
    expect(await list('from=2025-03-02')).toEqual(named('mar03_start', 'mar02_late'));
    expect(await list('to=2025-02-28')).toEqual(named('feb28_late'));
    expect(await list('from=2025-03-01&to=2025-03-01')).toEqual(named('mar01_noon', 'mar01_start'));
  });

  it('amount min/max are yuan, inclusive, read like the refund form', async () => {
    expect(await list('amount_min=12.34')).toEqual(named('mar02_late', 'mar01_noon', 'mar01_start'));
    expect(await list('amount_min=10&amount_max=50')).toEqual(named('mar01_noon', 'mar01_start', 'feb28_late'));
    expect(await list('amount_max=0.99')).toEqual(named('mar03_start'));
    expect(await list('amount_min=12.3&amount_max=12.34')).toEqual(named('mar01_start'));
    expect(await list('amount_min=123.45')).toEqual(named('mar02_late'));
  });

  it('combine with status, channel and the search', async () => {
    expect(await list('status=succeeded&channel=alipay_pc&from=2025-03-01&to=2025-03-02')).toEqual(named('mar02_late', 'mar01_start'));
    expect(await list('status=succeeded&channel=alipay_pc&from=2025-03-01&to=2025-03-02&amount_max=100')).toEqual(named('mar01_start'));
    expect(await list('q=flt_mar01_noon&from=2025-03-01')).toEqual(named('mar01_noon'));
    expect(await list('q=flt_mar01_noon&from=2025-03-02')).toEqual([]);
    const empty = await c.get('/console/payments?from=2030-01-01');
    expect(empty.text).toContain('No payments match these filters.');
  });

  it('pages a filtered list with the filters kept in the pager links, both ways', async () => {
    const big = await createApp(g.deps.db, { name: 'Big Shop' });
    await createConsoleUser(g.deps.db, { email: 'big@test.example', appId: big.app_id, password: PASSWORD });
    const inRange: string[] = [];
    for (let i = 0; i < 70; i++) {
      const res = await fetch(`${g.url}/v1/payments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${big.secret_key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ amount: 100 + i, subject: 'p', out_trade_no: `big_${i}` }),
      });
      const p = (await res.json()) as any;
      await g.deps.db('payments').where({ id: p.id }).update({ created: at('2025-05-01', 8, i % 60) + Math.floor(i / 60) * 86_400 * 3 });
      if (i < 60 && 100 + i >= 110) inRange.push(p.id);
    }
    const b = new ConsoleClient(g.url);
    expect((await b.login('big@test.example', PASSWORD)).status).toBe(303);
    const seen: string[] = [];
    let url = '/console/payments?from=2025-05-01&to=2025-05-02&amount_min=1.10';
    let last = '';
    for (let pages = 0; pages < 5 && url; pages++) {
      const res = await b.get(url);
      expect(res.status).toBe(200);
      seen.push(...shown(res.text));
      last = res.text;
      const next = /href="(\?[^"]*starting_after=[^"]+)"/.exec(res.text);
      url = next ? `/console/payments${next[1].replace(/&amp;/g, '&')}` : '';
    }
    expect(seen.sort()).toEqual([...inRange].sort());
    // Back from the last page: the newer link keeps the filters too.
    const newer = /href="(\?[^"]*ending_before=[^"]+)"/.exec(last)![1].replace(/&amp;/g, '&');
    expect(newer).toContain('amount_min=1.10');
    const back = await b.get(`/console/payments${newer}`);
    expect(shown(back.text)).toHaveLength(25);
    for (const id of shown(back.text)) expect(inRange).toContain(id);
  });

  it('shows bad values as a form error, never a 500', async () => {
    const cases: Array<[string, RegExp]> = [
      ['from=2025-02-30', /Created from must be a date/],
      ['from=yesterday', /Created from must be a date/],
      ['to=2025-13-01', /Created to must be a date/],
      ['from=2025-03-02&to=2025-03-01', /Created to must not be before created from/],
      ['amount_min=abc', /Minimum amount must be an amount in yuan/],
      ['amount_max=1.234', /Maximum amount must be an amount in yuan/],
      ['amount_min=-5', /Minimum amount must be an amount in yuan/],
      ['amount_min=1e3', /Minimum amount must be an amount in yuan/],
      ['amount_min=%2B5', /Minimum amount must be an amount in yuan/],
      ['amount_min=9999999999999', /Minimum amount must be an amount in yuan/],
      ['amount_min=20&amount_max=10', /maximum amount must not be below the minimum/],
      ['from[]=x&amount_min[a]=1', /./],
    ];
    for (const [query, message] of cases) {
      const res = await c.get(`/console/payments?${query}`);
      expect(res.status, query).toBeLessThan(500);
      if (query.includes('[')) continue;
      expect(res.status, query).toBe(400);
      expect(res.text, query).toMatch(/data-error/);
      expect(res.text, query).toMatch(message);
      expect(shown(res.text), query).toEqual([]);
    }
    // What was typed stays in the form, escaped.
    const typed = await c.get(`/console/payments?amount_min=${encodeURIComponent('<b>1')}`);
    expect(typed.text).toContain('value="&lt;b&gt;1"');
  });
});
