import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';

let g: TestGateway;
let seq = 0;
const desktop = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
});
afterAll(async () => {
  await g?.close();
});

const create = async (extra: Record<string, unknown> = {}) =>
  (await g.api('POST', '/v1/payments', { amount: 123456, subject: 'Green tea 绿茶', out_trade_no: `c_${Date.now()}_${++seq}`, ...extra })).body;

const formTokenOf = (html: string) => /name="form_token" value="([^"]+)"/.exec(html)?.[1];

describe('hosted cashier /pay/:token', () => {
  it('shows merchant, subject, amount and the channels, under a strict CSP', async () => {
    const p = await create();
    const res = await fetch(p.checkout_url, { headers: { 'user-agent': desktop, 'accept-language': 'en-US,en;q=0.9' } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('Test Shop');
    expect(html).toContain('Green tea 绿茶');
    expect(html).toContain('¥1,234.56');
    expect(html).toContain('data-channel="alipay_pc"');
    expect(html).toContain('lang="en"');
    const csp = res.headers.get('content-security-policy')!;
    const nonce = /'nonce-([^']+)'/.exec(csp)![1];
    expect(html).toContain(`nonce="${nonce}"`);
    expect(csp).toContain("object-src 'none'");
    expect(csp).toContain("base-uri 'none'");
    expect(csp).toContain('frame-ancestors http://127.0.0.1:4000');
    expect(html).not.toMatch(/\son[a-z]+=/i);
    const zh = await (await fetch(`${p.checkout_url}?lang=zh-CN`, { headers: { 'user-agent': desktop } })).text();
    expect(zh).toContain('选择支付方式');
  });

  it('zh-CN pages use full-width punctuation, and the countdown shows hours', async () => {
    const p = await create({ expires_in: 7200 });
    const pages = [
      await (await fetch(`${p.checkout_url}?lang=zh-CN`, { headers: { 'user-agent': desktop } })).text(),
      await (await fetch(`${p.checkout_url}/qr?lang=zh-CN&channel=alipay_qr`, { headers: { 'user-agent': desktop } })).text(),
    ];
    const closed = await create();
    await g.api('POST', `/v1/payments/${closed.id}/close`, {});
    pages.push(await (await fetch(`${closed.checkout_url}?lang=zh-CN`)).text());
    pages.push(await (await fetch(`${g.url}/pay/${'A'.repeat(32)}?lang=zh-CN`)).text());
    const cjk = '\u3000-\u303f\u3400-\u9fff\uff00-\uffef';
    const ascii = new RegExp(`[${cjk}][,:;?!()]|[,:;?!()][${cjk}]|[${cjk}] \\(`, 'u');
    for (const html of pages) {
      const text = html.replace(/<(script|style)[\s\S]*?<\/\1>/g, '').replace(/<[^>]+>/g, '');
      expect(text.split('\n').filter((line) => ascii.test(line))).toEqual([]);
    }
    for (const html of pages.slice(0, 2)) {
      expect(html).toMatch(/剩余支付时间：<time[^>]*>(1:59:\d\d|2:00:00)<\/time>/);
    }
  });

  it('a fresh nonce on every response', async () => {
    const p = await create();
    const a = (await fetch(p.checkout_url)).headers.get('content-security-policy');
    const b = (await fetch(p.checkout_url)).headers.get('content-security-policy');
    expect(a).not.toBe(b);
  });

  it('answers an unknown or malformed token with a 404 page', async () => {
    for (const t of ['A'.repeat(32), 'short', '../../etc/passwd']) {
      const res = await fetch(`${g.url}/pay/${encodeURIComponent(t)}`);
      expect(res.status).toBe(404);
      expect(await res.text()).toContain('data-result="not_found"');
    }
  });

  it('redirects to the Alipay sandbox with a valid form token and the right origin', async () => {
    const p = await create();
    const token = formTokenOf(await (await fetch(p.checkout_url, { headers: { 'user-agent': desktop } })).text())!;
    const res = await fetch(`${p.checkout_url}/channel`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(g.url).origin, 'user-agent': desktop },
      body: new URLSearchParams({ form_token: token, channel: 'alipay_pc' }),
    });
    expect(res.status).toBe(303);
    const to = new URL(res.headers.get('location')!);
    expect(to.pathname).toBe('/sandbox/alipay/gateway.do');
    expect(to.searchParams.get('method')).toBe('alipay.trade.page.pay');
    expect(to.searchParams.get('sign')).toBeTruthy();
  });

  it('refuses a missing or wrong form token, a foreign Origin and a channel not offered, creating no attempt', async () => {
    const p = await create();
    const token = formTokenOf(await (await fetch(p.checkout_url, { headers: { 'user-agent': desktop } })).text())!;
    const other = await create();
    const otherToken = formTokenOf(await (await fetch(other.checkout_url)).text())!;
    const send = (body: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(`${p.checkout_url}/channel`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': desktop, ...headers }, body: new URLSearchParams(body) });
    expect((await send({ channel: 'alipay_pc' })).status).toBe(403);
    expect((await send({ channel: 'alipay_pc', form_token: otherToken })).status).toBe(403);
    expect((await send({ channel: 'alipay_pc', form_token: token }, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await send({ channel: 'alipay_pc', form_token: token }, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await send({ channel: 'alipay_wap', form_token: token })).status).toBe(400);
    expect((await send({ channel: 'nope', form_token: token })).status).toBe(400);
    expect(await g.deps.db('payment_attempts').where({ payment_id: p.id })).toHaveLength(0);
  });

  it('shows paid, closed and expired payments on their own pages, at once after the change', async () => {
    // Each page is viewed open first: page views are cached, and a status change must evict them.
    const paid = await create();
    expect(await (await fetch(paid.checkout_url)).text()).toContain('name="form_token"');
    await g.api('POST', `/v1/test_helpers/payments/${paid.id}/simulate`, { channel: 'alipay_qr' });
    expect(await (await fetch(paid.checkout_url)).text()).toContain('data-result="succeeded"');
    const closed = await create();
    expect(await (await fetch(closed.checkout_url)).text()).toContain('name="form_token"');
    expect((await g.api('POST', `/v1/payments/${closed.id}/close`, {})).status).toBe(200);
    expect(await (await fetch(closed.checkout_url)).text()).toContain('data-result="closed"');
    const expired = await create({ expires_in: 60 });
    await g.deps.db('payments').where({ id: expired.id }).update({ expires_at: Math.floor(Date.now() / 1000) - 1 });
    expect(await (await fetch(expired.checkout_url)).text()).toContain('data-result="expired"');
  });

  it('the return page asks the channel when the notify has not come, then goes on to return_url', async () => {
    const p = await create({ return_url: 'https://shop.example/done?x=1' });
    const sim = await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc', notify: 'drop' });
    expect(sim.body.status).toBe('pending');
    const res = await fetch(`${p.checkout_url}/return`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    const to = new URL(res.headers.get('location')!);
    expect(to.origin + to.pathname).toBe('https://shop.example/done');
    expect(to.searchParams.get('x')).toBe('1');
    expect(to.searchParams.get('payment_id')).toBe(p.id);
    expect((await g.api('GET', `/v1/payments/${p.id}`)).body.status).toBe('succeeded');
  });

  it('a channel the app has not set up tells the payer in their language, never the API\'s English for merchants', async () => {
    const res = await fetch(`${g.url}/v1/payments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${g.app.live_secret_key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 100, subject: 'Live tea', out_trade_no: `live_${Date.now()}` }),
    });
    const p = await res.json();
    const token = formTokenOf(await (await fetch(p.checkout_url, { headers: { 'user-agent': desktop } })).text())!;
    const page = await fetch(`${p.checkout_url}/channel?lang=zh-CN`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': desktop },
      body: new URLSearchParams({ form_token: token, channel: 'alipay_pc' }),
    });
    expect(page.status).toBe(400);
    const html = await page.text();
    expect(html).toContain('该支付方式暂不可用。');
    expect(html).not.toContain('not configured');
  });

  it('the status endpoint reports the state for polling', async () => {
    const p = await create();
    const s = await (await fetch(`${p.checkout_url}/status`)).json();
    expect(s).toEqual({ status: 'open', payment_id: p.id, return_url: null });
  });
});

const agents = {
  desktop,
  iphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
  android: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36',
  wechat: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN',
  alipay: 'Mozilla/5.0 (Linux; U; Android 14; zh-CN; V2309A) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/69.0 Mobile Safari/537.36 AlipayClient/10.5.86.8000',
};

describe('channels offered where the customer is', () => {
  const offered = async (ua: string) => {
    const p = await create();
    const html = await (await fetch(p.checkout_url, { headers: { 'user-agent': ua } })).text();
    return { html, codes: [...html.matchAll(/data-channel="([a-z_]+)"/g)].map((m) => m[1]) };
  };
  it('desktop browsers get the desktop channels', async () => {
    const { codes } = await offered(agents.desktop);
    expect(codes).toContain('alipay_pc');
    expect(codes).not.toContain('alipay_wap');
    expect(codes).not.toContain('wechat_jsapi');
  });
  it('mobile browsers get the mobile channels', async () => {
    for (const ua of [agents.iphone, agents.android]) {
      const { codes } = await offered(ua);
      expect(codes).toContain('alipay_wap');
      expect(codes).not.toContain('alipay_pc');
      expect(codes).not.toContain('alipay_qr');
    }
  });
  it('inside Alipay only Alipay WAP', async () => {
    expect((await offered(agents.alipay)).codes).toEqual(['alipay_wap']);
  });
  it('JSAPI: sends the payer to the OAuth with a letters-and-digits state, and refuses a forged one', async () => {
    const p = await create();
    const html = await (await fetch(p.checkout_url, { headers: { 'user-agent': agents.wechat } })).text();
    const res = await fetch(`${p.checkout_url}/channel`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': agents.wechat },
      body: new URLSearchParams({ form_token: formTokenOf(html)!, channel: 'wechat_jsapi' }),
    });
    expect(res.status).toBe(303);
    const to = new URL(res.headers.get('location')!);
    expect(to.pathname).toMatch(/\/connect\/oauth2\/authorize$/);
    expect(to.searchParams.get('scope')).toBe('snsapi_base');
    expect(to.searchParams.get('state')).toMatch(/^[0-9a-f]{64}$/);
    const forged = await fetch(`${p.checkout_url}/authorized?channel=wechat_jsapi&code=abc&state=${'0'.repeat(64)}`, { headers: { 'user-agent': agents.wechat } });
    expect(forged.status).toBe(403);
    expect(await g.deps.db('payment_attempts').where({ payment_id: p.id })).toHaveLength(0);
  });

  it('inside WeChat no Alipay, but a guide to open the page in a browser', async () => {
    const { html, codes } = await offered(agents.wechat);
    expect(codes.filter((c) => c.startsWith('alipay'))).toEqual([]);
    expect(html).toContain('data-guide="open-in-browser"');
  });
});

describe('QR codes on the cashier', () => {
  const chooseQr = async (p: any) => {
    const token = formTokenOf(await (await fetch(p.checkout_url, { headers: { 'user-agent': desktop } })).text())!;
    const res = await fetch(`${p.checkout_url}/channel?lang=en`, {
      method: 'POST', redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': desktop },
      body: new URLSearchParams({ form_token: token, channel: 'alipay_qr' }),
    });
    expect(res.status).toBe(303);
    return new URL(res.headers.get('location')!, g.url).toString();
  };
  it('renders the QR as inline SVG, reuses it on reload and renews it once expired', async () => {
    const p = await create();
    const qrUrl = await chooseQr(p);
    expect(qrUrl).toContain('/qr?lang=en&channel=alipay_qr');
    const page = await fetch(qrUrl, { headers: { 'user-agent': desktop } });
    const html = await page.text();
    expect(html).toMatch(/<svg[^>]*>/);
    expect(html).toContain('data-sandbox-action="scan"');
    expect(html).toContain('¥1,234.56');
    expect(await g.deps.db('payment_attempts').where({ payment_id: p.id })).toHaveLength(1);
    await fetch(qrUrl, { headers: { 'user-agent': desktop } });
    expect(await g.deps.db('payment_attempts').where({ payment_id: p.id })).toHaveLength(1);
    // Two hours later the code is dead: the page places a new order and the old one goes to be closed.
    await g.deps.db('payment_attempts').where({ payment_id: p.id }).update({ created: Math.floor(Date.now() / 1000) - 7201 });
    const renewed = await (await fetch(qrUrl, { headers: { 'user-agent': desktop } })).text();
    const attempts = await g.deps.db('payment_attempts').where({ payment_id: p.id }).orderBy('created');
    expect(attempts.map((a) => a.status).sort()).toEqual(['closing', 'pending']);
    expect(renewed).not.toBe(html);
  });

  it('pushes the status over Server-Sent Events as soon as the notify is accepted', async () => {
    const p = await create();
    const res = await fetch(`${p.checkout_url}/events`);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const chunks: string[] = [];
    const read = async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        chunks.push(Buffer.from(value).toString());
      }
    };
    const reading = read();
    await new Promise((r) => setTimeout(r, 100));
    expect(chunks.join('')).toContain('"status":"open"');
    await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_qr' });
    await reading;
    const events = chunks.join('').split('\n\n').filter((e) => e.startsWith('event: status'));
    expect(events.at(-1)).toContain('"status":"succeeded"');
  });

  it('trusts parent_origin only when it is a registered origin', async () => {
    const p = await create();
    const ok = await (await fetch(`${p.checkout_url}?embed=1&parent_origin=${encodeURIComponent('http://127.0.0.1:4000')}`)).text();
    expect(ok).toContain('data-parent-origin="http://127.0.0.1:4000"');
    expect(ok).toContain('/channel?embed=1&amp;parent_origin=http%3A%2F%2F127.0.0.1%3A4000');
    const bad = await (await fetch(`${p.checkout_url}?embed=1&parent_origin=${encodeURIComponent('https://evil.example')}`)).text();
    expect(bad).not.toContain('data-parent-origin');
  });
});
