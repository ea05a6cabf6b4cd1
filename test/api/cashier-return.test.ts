// Coming back from a channel unpaid (failed, cancelled, not confirmed yet), on every channel:
// the return page asks, then the cashier offers the choice again and says how it went.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { startPaymentWorker } from '../../server/payments/worker.ts';

let g: TestGateway;
let seq = 0;
const desktop = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';
const agents = {
  iphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
  wechat: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN',
};

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(async () => {
  await g?.close();
});

const create = async (extra: Record<string, unknown> = {}) =>
  (await g.api('POST', '/v1/payments', { amount: 123456, subject: 'Green tea 绿茶', out_trade_no: `r_${Date.now()}_${++seq}`, ...extra })).body;

const formTokenOf = (html: string) => /name="form_token" value="([^"]+)"/.exec(html)?.[1];

/**
 * The payer's browser, by hand: follows redirects one at a time (so each hop can be looked at)
 * and submits the simulator's payer form with one of its buttons, as a click would.
 */
describe('coming back unpaid: the return page asks, then offers the channel choice again', () => {
  const ua = { desktop, mobile: agents.iphone, wechat: agents.wechat };
  const get = (url: string, agent: string) => fetch(new URL(url, g.url), { redirect: 'manual', headers: { 'user-agent': agent } });
  /** Follows redirects from `res` to the first page; returns its URL and HTML. */
  async function land(res: Response, agent: string, url: string): Promise<{ url: string; html: string }> {
    for (let hops = 0; res.status >= 300 && res.status < 400; hops++) {
      expect(hops).toBeLessThan(10);
      url = new URL(res.headers.get('location')!, url).toString();
      // The merchant's own site (return_url) is where the cashier's part ends.
      if (new URL(url).origin !== new URL(g.url).origin) return { url, html: '' };
      res = await get(url, agent);
    }
    return { url, html: await res.text() };
  }
  async function chooseChannel(p: any, channel: string, agent: string) {
    const token = formTokenOf(await (await get(p.checkout_url, agent)).text())!;
    const res = await fetch(`${p.checkout_url}/channel`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': agent },
      body: new URLSearchParams({ form_token: token, channel }),
    });
    return land(res, agent, p.checkout_url);
  }
  /** Clicks data-sandbox-action=<action> on a simulator payer page. */
  async function press(page: { url: string; html: string }, action: 'pay' | 'fail' | 'cancel', agent: string) {
    const form = /<form method="post" action="([^"]+)">([\s\S]*?)<\/form>/.exec(page.html)!;
    const fields = new URLSearchParams({ notify_mode: 'normal', action });
    for (const m of form[2].matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields.set(m[1], m[2].replace(/&amp;/g, '&').replace(/&#34;/g, '"'));
    const res = await fetch(new URL(form[1], page.url), { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': agent }, body: fields });
    return land(res, agent, page.url);
  }
  /** The simulator's result page ("payment failed") links back to the merchant: follow it. */
  async function back(page: { url: string; html: string }, agent: string) {
    const link = /<a class="back" href="([^"]+)"/.exec(page.html)?.[1];
    expect(link, page.html).toBeTruthy();
    return land(await get(link!.replace(/&amp;/g, '&'), agent), agent, page.url);
  }
  const notice = (html: string) => /data-notice="(\w+)">([^<]*)</.exec(html)?.slice(1);
  const channelsOn = (html: string) => [...html.matchAll(/data-channel="([a-z0-9_]+)"/g)].map((m) => m[1]);
  const attempts = (p: any) => g.deps.db('payment_attempts').where({ payment_id: p.id }).orderBy('created');

  /** The in-app page after the OAuth stand-in, then the sheet stand-in it links to. */
  async function jsapiSheet(p: any) {
    const inapp = await chooseChannel(p, 'wechat_jsapi', ua.wechat);
    const href = /href="([^"]+)" data-sandbox-action="inapp"/.exec(inapp.html)![1].replace(/&amp;/g, '&');
    return land(await get(href, ua.wechat), ua.wechat, inapp.url);
  }

  const cases: Array<{ channel: string; agent: string; action: 'fail' | 'cancel'; expect: 'failed' | 'pending'; open?: (p: any) => Promise<{ url: string; html: string }> }> = [
    // Alipay closes the trade on a failure (and notifies TRADE_CLOSED); a cancel leaves it WAIT_BUYER_PAY.
    { channel: 'alipay_pc', agent: ua.desktop, action: 'cancel', expect: 'pending' },
    { channel: 'alipay_pc', agent: ua.desktop, action: 'fail', expect: 'failed' },
    // Quitting the mobile cashier goes to quit_url, which is the return page too.
    { channel: 'alipay_wap', agent: ua.mobile, action: 'cancel', expect: 'pending' },
    { channel: 'alipay_wap', agent: ua.mobile, action: 'fail', expect: 'failed' },
    // WeChat sends no notify for a failure: the return page's query finds PAYERROR.
    { channel: 'wechat_h5', agent: ua.mobile, action: 'cancel', expect: 'pending' },
    { channel: 'wechat_h5', agent: ua.mobile, action: 'fail', expect: 'failed' },
    { channel: 'wechat_jsapi', agent: ua.wechat, action: 'cancel', expect: 'pending', open: jsapiSheet },
    { channel: 'wechat_jsapi', agent: ua.wechat, action: 'fail', expect: 'failed', open: jsapiSheet },
  ];
  for (const c of cases) {
    it(`${c.channel}: ${c.action} on the simulator brings the payer back to the choice, told it ${c.expect === 'failed' ? 'failed' : 'is not complete'}`, async () => {
      const p = await create({ return_url: 'https://shop.example/done' });
      const sim = c.open ? await c.open(p) : await chooseChannel(p, c.channel, c.agent);
      expect(sim.html).toContain('data-sandbox-action="cancel"');
      let page = await press(sim, c.action, c.agent);
      if (!page.url.includes('/pay/')) page = await back(page, c.agent);
      expect(new URL(page.url).pathname).toBe(new URL(p.checkout_url).pathname);
      const [attempt] = await attempts(p);
      expect(new URL(page.url).searchParams.get('attempt')).toBe(attempt.id);
      expect(attempt.status).toBe(c.expect === 'failed' ? 'failed' : 'pending');
      expect(notice(page.html)?.[0]).toBe(c.expect);
      expect(channelsOn(page.html), page.html).toContain(c.channel);
      expect(page.html).toContain('name="form_token"');
      // Not confirmed: the page watches the attempt, so a late success (or failure) still lands.
      if (c.expect === 'pending') expect(page.html).toContain(`/events?attempt=${attempt.id}`);
      else expect(page.html).not.toContain('?attempt=');
      expect((await g.api('GET', `/v1/payments/${p.id}`)).body.status).toBe('pending');
    });
  }

  it('the lines name the channel, in the payer\'s language', async () => {
    const p = await create();
    const sim = await chooseChannel(p, 'alipay_pc', ua.desktop);
    await press(sim, 'fail', ua.desktop);
    const [attempt] = await attempts(p);
    const en = await (await get(`${p.checkout_url}?lang=en&attempt=${attempt.id}`, ua.desktop)).text();
    expect(notice(en)).toEqual(['failed', 'The payment with Alipay did not go through and is closed. Please choose a payment method to try again.']);
    const zh = await (await get(`${p.checkout_url}?lang=zh-CN&attempt=${attempt.id}`, ua.desktop)).text();
    expect(notice(zh)).toEqual(['failed', '支付宝：付款未成功，这次付款已关闭。请重新选择支付方式。']);
    expect(zh).toContain('role="alert"');
    // An attempt id of another payment, or none at all, shows no line.
    const other = await create();
    expect(notice(await (await get(`${other.checkout_url}?attempt=${attempt.id}`, ua.desktop)).text())).toBeUndefined();
    expect(notice(await (await get(`${other.checkout_url}?attempt=nonsense`, ua.desktop)).text())).toBeUndefined();
  });

  it('after a cancel, paying the same order later still lands; the return page then goes on to return_url', async () => {
    const p = await create({ return_url: 'https://shop.example/done' });
    const sim = await chooseChannel(p, 'alipay_pc', ua.desktop);
    const page = await press(sim, 'cancel', ua.desktop);
    expect(notice(page.html)?.[0]).toBe('pending');
    const [attempt] = await attempts(p);
    expect(await (await get(`${p.checkout_url}/status?attempt=${attempt.id}`, ua.desktop)).json()).toEqual({ status: 'open', payment_id: p.id, return_url: null, attempt_status: 'pending' });
    // The payer had the Alipay tab still open and pays there after all.
    const paid = await press(sim, 'pay', ua.desktop);
    expect(paid.url).toMatch(/^https:\/\/shop\.example\/done\?/);
    const s = await (await get(`${p.checkout_url}/status?attempt=${attempt.id}`, ua.desktop)).json();
    expect(s).toMatchObject({ status: 'succeeded', attempt_status: 'succeeded' });
  });

  it('a return with no attempt at all offers the choice, and never a waiting page', async () => {
    const p = await create();
    const res = await get(`${p.checkout_url}/return`, ua.desktop);
    expect(res.status).toBe(303);
    const page = await land(res, ua.desktop, `${p.checkout_url}/return`);
    expect(channelsOn(page.html)).toContain('alipay_pc');
    expect(notice(page.html)).toBeUndefined();
  });

  it('the status endpoints refuse an attempt that is not this checkout\'s, naming the parameter', async () => {
    const p = await create();
    for (const bad of ['att_nope', 'x', '']) {
      for (const path of ['status', 'events']) {
        const res = await get(`${p.checkout_url}/${path}?attempt=${bad}`, ua.desktop);
        expect(res.status).toBe(400);
        expect((await res.json()).error).toMatchObject({ type: 'invalid_request_error', param: 'attempt' });
      }
    }
  });
});

describe('a QR code that failed sends the payer back to the choice', () => {
  const qrPage = async (p: any, channel: string) => {
    const token = formTokenOf(await (await fetch(p.checkout_url, { headers: { 'user-agent': desktop } })).text())!;
    const res = await fetch(`${p.checkout_url}/channel`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': desktop },
      body: new URLSearchParams({ form_token: token, channel }),
    });
    const url = new URL(res.headers.get('location')!, g.url).toString();
    return { url, html: await (await fetch(url, { headers: { 'user-agent': desktop } })).text() };
  };
  const attemptOf = async (p: any) => (await g.deps.db('payment_attempts').where({ payment_id: p.id }))[0];
  /** The phone: opens the scan link and presses a button on the simulator's page. */
  async function scanAndPress(html: string, action: 'fail' | 'cancel') {
    const scan = /href="([^"]+)" data-sandbox-action="scan"/.exec(html)![1].replace(/&amp;/g, '&');
    const page = await (await fetch(scan)).text();
    const form = /<form method="post" action="([^"]+)">([\s\S]*?)<\/form>/.exec(page)!;
    const fields = new URLSearchParams({ notify_mode: 'normal', action });
    for (const m of form[2].matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) fields.set(m[1], m[2].replace(/&amp;/g, '&'));
    return fetch(new URL(form[1], scan), { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: fields });
  }
  const status = async (p: any, attemptId: string) => (await fetch(`${p.checkout_url}/status?attempt=${attemptId}`)).json();

  it('Alipay QR: the failure notify closes the attempt; the page is told, and a reload goes to the choice with the line', async () => {
    const p = await create();
    const qr = await qrPage(p, 'alipay_qr');
    const attempt = await attemptOf(p);
    expect(qr.html).toContain(`data-events-url="/pay/${p.checkout_token ?? new URL(p.checkout_url).pathname.split('/')[2]}/events?attempt=${attempt.id}"`);
    expect(qr.html).toMatch(new RegExp(`<meta http-equiv="refresh" content="5; url=[^"]*attempt=${attempt.id}`));
    expect(await status(p, attempt.id)).toMatchObject({ status: 'open', attempt_status: 'pending' });
    await scanAndPress(qr.html, 'fail');
    expect(await status(p, attempt.id)).toMatchObject({ status: 'open', attempt_status: 'failed' });
    const refresh = /content="5; url=([^"]+)"/.exec(qr.html)![1].replace(/&amp;/g, '&');
    const res = await fetch(new URL(refresh, g.url), { redirect: 'manual', headers: { 'user-agent': desktop } });
    expect(res.status).toBe(303);
    const back = new URL(res.headers.get('location')!, g.url);
    expect(back.pathname).toBe(new URL(p.checkout_url).pathname);
    expect(back.searchParams.get('attempt')).toBe(attempt.id);
    const html = await (await fetch(back, { headers: { 'user-agent': desktop } })).text();
    expect(html).toContain('data-notice="failed"');
    expect(html).toContain('data-channel="alipay_qr"');
    // Choosing the QR again places a new order: the dead one is not shown again.
    const again = await qrPage(p, 'alipay_qr');
    expect(again.html).toContain('<svg');
    expect(await g.deps.db('payment_attempts').where({ payment_id: p.id })).toHaveLength(2);
  });

  it('WeChat Native: no notify on a failure, but a watched code is queried within seconds', async () => {
    const p = await create();
    const qr = await qrPage(p, 'wechat_native');
    const attempt = await attemptOf(p);
    const worker = startPaymentWorker(g.deps, { background: false });
    try {
      await scanAndPress(qr.html, 'fail');
      // Without a watcher the first query is 10 s away, and the schedule slows to hourly.
      expect((await status(p, attempt.id)).attempt_status).toBe('pending');
      const due = Number((await attemptOf(p)).next_query_at_ms);
      expect(due).toBeLessThanOrEqual(Date.now() + 5000);
      await g.deps.db('payment_attempts').where({ id: attempt.id }).update({ next_query_at_ms: Date.now() });
      await worker.runOnce();
      expect(await status(p, attempt.id)).toMatchObject({ status: 'open', attempt_status: 'failed' });
    } finally {
      await worker.stop();
    }
  });

  it('a tab left open on an old code is asked about every 30 s, not every 5 s', async () => {
    const p = await create();
    await qrPage(p, 'alipay_qr');
    const attempt = await attemptOf(p);
    await g.deps.db('payment_attempts').where({ id: attempt.id }).update({ created: Math.floor(Date.now() / 1000) - 601, next_query_at_ms: Date.now() + 3_600_000 });
    const before = Date.now();
    await status(p, attempt.id);
    const due = Number((await attemptOf(p)).next_query_at_ms);
    expect(due).toBeGreaterThanOrEqual(before + 30_000);
    expect(due).toBeLessThanOrEqual(Date.now() + 30_000);
  });

  it('a cancel on the phone leaves the code payable: the QR page stays', async () => {
    const p = await create();
    const qr = await qrPage(p, 'alipay_qr');
    const attempt = await attemptOf(p);
    await scanAndPress(qr.html, 'cancel');
    expect(await status(p, attempt.id)).toMatchObject({ status: 'open', attempt_status: 'pending' });
    const refresh = /content="5; url=([^"]+)"/.exec(qr.html)![1].replace(/&amp;/g, '&');
    const again = await fetch(new URL(refresh, g.url), { redirect: 'manual', headers: { 'user-agent': desktop } });
    expect(again.status).toBe(200);
    expect(await again.text()).toContain('<svg');
  });
});
