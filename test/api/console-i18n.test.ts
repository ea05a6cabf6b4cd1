import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../support/gateway.ts';
import { createConsoleUser } from '../../server/dashboard/users.ts';
import { consoleCatalog } from '../../server/dashboard/i18n.ts';
import { ConsoleClient } from '../support/console.ts';
import { beijingDay, signedAgreement } from '../support/subscriptions.ts';
import { getCredentials } from '../../server/apps/channel-configs.ts';
import { wechatpaySandbox } from '../../server/sandbox/wechatpay/index.ts';

/**
 * The console in both languages (issue 16, "Language and polish"): every page of the navigation,
 * a detail page of each object type, the login page and a refusal page, read as zh-CN and as
 * English: the right <html lang>, none of the other language's catalog text, and full-width
 * punctuation in Chinese text.
 */
let g: TestGateway;
const PASSWORD = 'a long enough passphrase';
const ZH = { 'accept-language': 'zh-CN,zh;q=0.9,en;q=0.8' };
const EN = { 'accept-language': 'en-US,en;q=0.9' };

const CJK = '\\u3000-\\u303f\\u3400-\\u9fff\\uff00-\\uffef';
/** A Chinese character followed by ASCII , . : ; ! ? ( ), or an ASCII "(" opening Chinese text. */
const asciiAfterCjk = new RegExp(`[${CJK}][,.:;!?()]|\\([${CJK}]|[${CJK}] \\(`, 'u');

const decode = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');

/** What a reader sees or hears: text nodes, and the labels and confirmations in attributes. */
function visibleTexts(html: string): string[] {
  const body = html.replace(/<script[\s\S]*?<\/script>/g, '').replace(/<style[\s\S]*?<\/style>/g, '').replace(/<(code|pre|textarea)\b[\s\S]*?<\/\1>/g, ' ');
  const texts = body.split(/<[^>]*>/).map((s) => decode(s).replace(/\s+/g, ' ').trim()).filter(Boolean);
  for (const m of body.matchAll(/\b(?:aria-label|placeholder|data-confirm|data-confirm-partial|title|alt)="([^"]*)"/g)) texts.push(decode(m[1]!));
  return texts;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** Catalog texts of one language that a page of the other must not show (longer than a few characters, and not the same in both). */
function foreignTexts(shown: 'en' | 'zh-CN'): RegExp[] {
  const other = shown === 'en' ? 'zh-CN' : 'en';
  const out: RegExp[] = [];
  for (const [key, value] of Object.entries(consoleCatalog[other])) {
    const mine = consoleCatalog[shown][key]!;
    const core = value.replace(/\{\w+\}/g, '\u0000').split('\u0000').map((s) => s.trim()).sort((a, b) => b.length - a.length)[0] ?? '';
    if (value === mine || core.length < (other === 'en' ? 6 : 3)) continue;
    if (Object.values(consoleCatalog[shown]).some((v) => v.includes(core))) continue;
    // A word on its own: "succeeded" is not flagged inside the event type payment.succeeded.
    out.push(new RegExp(other === 'en' ? `(?<![\\w.])${escapeRe(core)}(?![\\w.])` : escapeRe(core), 'u'));
  }
  return out;
}

function problems(html: string, lang: 'en' | 'zh-CN'): string[] {
  const out: string[] = [];
  const htmlLang = /<html lang="([^"]+)"/.exec(html)?.[1];
  if (htmlLang !== lang) out.push(`<html lang="${htmlLang}">`);
  const foreign = foreignTexts(lang);
  for (const text of visibleTexts(html)) {
    // The language switch names the other language in itself.
    if (text === '中文' || text === 'English') continue;
    for (const re of foreign) if (re.test(text)) out.push(`${lang === 'zh-CN' ? 'English' : 'Chinese'} "${re.source}" in: ${text}`);
    if (lang === 'zh-CN' && asciiAfterCjk.test(text)) out.push(`ASCII punctuation in Chinese: ${text}`);
  }
  return [...new Set(out)];
}

let owner: ConsoleClient;
let paymentId = '';

beforeAll(async () => {
  g = await startTestGateway({ workers: false });
  await createConsoleUser(g.deps.db, { email: 'owner@i18n.example', appId: g.app.app_id, password: PASSWORD });
  owner = new ConsoleClient(g.url);
  expect((await owner.login('owner@i18n.example', PASSWORD)).status).toBe(303);

  // One object of each type the console lists, so each list and detail page has something in it.
  const p = (await g.api('POST', '/v1/payments', { amount: 123456, subject: '乌龙茶', out_trade_no: `i18n_${Date.now()}` })).body;
  await g.api('POST', `/v1/test_helpers/payments/${p.id}/simulate`, { channel: 'alipay_pc' });
  await g.api('POST', `/v1/payments/${p.id}/refunds`, { amount: 100 });
  paymentId = p.id;
  await g.api('POST', '/v1/coupons', { code: 'I18N10', percent_off: 10 });
  await g.api('POST', '/v1/webhook_endpoints', { url: 'https://shop.example/hooks' });
  const day = beijingDay(3);
  const { agreement } = await signedAgreement(g, { period_type: 'MONTH', period: 1, execute_time: day.slice(8, 10) > '28' ? `${day.slice(0, 8)}28` : day });
  await g.api('POST', '/v1/subscriptions', { agreement: agreement.id, amount: 990, subject: '茶会', interval: 'month' });
  const cred: any = await getCredentials(g.deps, g.app.app_id, 'wechatpay', false);
  const openid = wechatpaySandbox.payerId!({ db: g.deps.db, publicUrl: g.deps.config.publicUrl, masterKey: g.deps.config.masterKeyBytes, logger: g.deps.logger }, cred.appid);
  await g.api('POST', '/v1/transfers', { channel: 'wechatpay', amount: 1000, out_transfer_no: `i18n_tr_${Date.now()}`, recipient: { type: 'wechat_openid', account: openid } });
}, 60_000);
afterAll(async () => {
  await g?.close();
});

const NAV = ['payments', 'refunds', 'customers', 'coupons', 'transfers', 'red_packets', 'agreements', 'subscriptions', 'webhooks', 'keys', 'channels', 'reconciliation', 'team', 'audit'];

/** Every page of the navigation, the first detail page each list links to, and a channel's onboarding page. */
async function consolePages(headers: Record<string, string>): Promise<Array<[string, string]>> {
  const pages: Array<[string, string]> = [];
  for (const section of NAV) {
    const list = await owner.request('GET', `/console/${section}`, { headers });
    expect(list.status, section).toBe(200);
    pages.push([`/console/${section}`, list.text]);
    const detail = new RegExp(`href="(/console/${section}/(?!new)[A-Za-z0-9_]+)"`).exec(list.text)?.[1];
    if (detail && section !== 'channels') {
      const page = await owner.request('GET', detail, { headers });
      expect(page.status, detail).toBe(200);
      pages.push([detail, page.text]);
    }
  }
  for (const path of ['/console/channels/alipay', `/console/payments/${paymentId}`]) pages.push([path, (await owner.request('GET', path, { headers })).text]);
  return pages;
}

async function otherPages(headers: Record<string, string>): Promise<Array<[string, string]>> {
  const anonymous = new ConsoleClient(g.url);
  const login = await anonymous.request('GET', '/console/login', { headers });
  const invitation = await anonymous.request('GET', '/console/invitations/not-a-real-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', { headers });
  // A form without its token: the 403 refusal page.
  const refused = await owner.request('POST', '/console/mode', { form: { mode: 'live' }, headers });
  expect(refused.status).toBe(403);
  const missing = await owner.request('GET', '/console/payments/pay_nothing_here', { headers });
  expect(missing.status).toBe(404);
  return [['/console/login', login.text], ['invitation', invitation.text], ['403', refused.text], ['404', missing.text]];
}

describe('console in zh-CN (Accept-Language: zh-CN)', () => {
  it('every page: lang="zh-CN", no English from the catalog, full-width punctuation', async () => {
    const bad: string[] = [];
    const pages = [...(await consolePages(ZH)), ...(await otherPages(ZH))];
    expect(pages.length).toBeGreaterThan(20);
    for (const [path, html] of pages) {
      if (!html.includes('<html lang="zh-CN">')) bad.push(`${path}: not zh-CN`);
      for (const p of problems(html, 'zh-CN')) bad.push(`${path}: ${p}`);
    }
    expect(bad).toEqual([]);
  }, 60_000);

  it('amounts in Chinese form, times in Beijing time', async () => {
    const page = await owner.request('GET', '/console/refunds', { headers: ZH });
    const payment = (await owner.request('GET', `/console/payments/${paymentId}`, { headers: ZH })).text;
    expect(payment).toContain('¥1,234.56');
    // The timeline's sentences, and the refund's confirmations (the typed amount's filled in by console.js).
    expect(payment).toContain('支付已创建');
    expect(payment).toContain('退款 ¥1.00');
    expect(payment).toMatch(/data-confirm="退款 i18n_\d+：退还剩余的全部金额（¥1,233.56）？"\s+data-confirm-amount="amount"\s+data-confirm-partial="退款 i18n_\d+：\{amount\} CNY？"/);
    expect(page.text).toContain('¥1.00');
    expect(page.text).not.toContain('CN¥');
    expect(page.text).toMatch(/\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/);
    expect(page.text).toContain('北京时间');
  });

  it.each(['zh', 'zh-Hans', 'zh-CN', 'zh-TW,en;q=0.5'])('Accept-Language %s gives zh-CN', async (al) => {
    const page = await owner.request('GET', '/console/payments', { headers: { 'accept-language': al } });
    expect(page.text).toContain('<html lang="zh-CN">');
  });
});

describe('console in English', () => {
  it('every page: lang="en" and none of the Chinese catalog text', async () => {
    const bad: string[] = [];
    const pages = [...(await consolePages(EN)), ...(await otherPages(EN))];
    for (const [path, html] of pages) for (const p of problems(html, 'en')) bad.push(`${path}: ${p}`);
    expect(bad).toEqual([]);
  }, 60_000);

  it.each([undefined, 'fr-FR', 'en', 'de,zh;q=0.5'])('Accept-Language %s gives English', async (al) => {
    const page = await owner.request('GET', '/console/payments', { headers: al ? { 'accept-language': al } : {} });
    expect(page.text).toContain('<html lang="en">');
    expect(page.text).toContain('CN¥');
  });
});

describe('the language switch', () => {
  it('is a link in the header that sets a cookie; the choice wins over Accept-Language and persists', async () => {
    const c = new ConsoleClient(g.url);
    const login = await c.request('GET', '/console/login', { headers: EN });
    const link = /href="([^"]*\/console\/lang\?to=zh-CN[^"]*)"[^>]*data-lang-switch/.exec(login.text)?.[1];
    expect(link).toBeDefined();
    const switched = await c.get(decode(link!));
    expect(switched.status).toBe(303);
    expect(switched.location).toBe('/console/login');
    expect(switched.headers.get('set-cookie')).toMatch(/__Host-checkstand_console_lang=zh-CN; Path=\/; Max-Age=\d+; Secure; HttpOnly; SameSite=Lax/);
    // The choice persists through the login, over an English Accept-Language.
    expect((await c.request('GET', '/console/login', { headers: EN })).text).toContain('<html lang="zh-CN">');
    expect((await c.login('owner@i18n.example', PASSWORD)).status).toBe(303);
    const payments = await c.request('GET', '/console/payments', { headers: EN });
    expect(payments.text).toContain('<html lang="zh-CN">');
    expect(payments.text).toContain('退款');
    // And back: the header offers English, which comes back to the same page.
    const back = /href="([^"]*\/console\/lang\?to=en[^"]*)"/.exec(payments.text)?.[1];
    const res = await c.get(decode(back!));
    expect(res.location).toBe('/console/payments');
    expect((await c.request('GET', '/console/payments', { headers: ZH })).text).toContain('<html lang="en">');
  });

  it('refuses anything but a console path to go back to, and ignores an unknown language', async () => {
    const c = new ConsoleClient(g.url);
    const res = await c.get('/console/lang?to=fr&next=https://evil.example/');
    expect(res.status).toBe(303);
    expect(res.location).toBe('/console/payments');
    expect(res.headers.get('set-cookie')).toBeNull();
  });
});
