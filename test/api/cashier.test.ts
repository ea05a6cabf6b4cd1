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

  it('shows paid, closed and expired payments on their own pages', async () => {
    const paid = await create();
    await g.api('POST', `/v1/test_helpers/payments/${paid.id}/simulate`, { channel: 'alipay_qr' });
    expect(await (await fetch(paid.checkout_url)).text()).toContain('data-result="succeeded"');
    const expired = await create({ expires_in: 60 });
    await g.deps.db('payments').where({ id: expired.id }).update({ expires_at: Math.floor(Date.now() / 1000) - 1 });
    expect(await (await fetch(expired.checkout_url)).text()).toContain('data-result="expired"');
    await g.deps.db('payments').where({ id: expired.id }).update({ status: 'closed' });
    expect(await (await fetch(expired.checkout_url)).text()).toContain('data-result="closed"');
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

  it('the status endpoint reports the state for polling', async () => {
    const p = await create();
    const s = await (await fetch(`${p.checkout_url}/status`)).json();
    expect(s).toEqual({ status: 'open', return_url: null });
  });
});
