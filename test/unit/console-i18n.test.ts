import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { consoleZh } from '../../server/dashboard/i18n/zh-CN.ts';
import { htmlTranslator, translator } from '../../server/dashboard/i18n.ts';
import { onboardingGuide, ONBOARDING_PROVIDERS } from '../../server/apps/onboarding.ts';

/**
 * Every literal text the console translates has its zh-CN entry (server/dashboard/i18n.ts: a
 * missing one would show in English on a Chinese page). The sources are scanned: t('…'),
 * tHtml('…') and tOf(res)('…'), and both texts of t(cond ? '…' : '…').
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const CJK = '\\u3000-\\u303f\\u3400-\\u9fff\\uff00-\\uffef';
const asciiNextToCjk = new RegExp(`[${CJK}][,:;?!()]|[,:;?!()][${CJK}]|[${CJK}] \\(`, 'u');

const LITERAL = String.raw`('(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")`;
const CALL = String.raw`(?:(?<![\w.])t|(?<![\w.])tHtml|(?<![\w.])tr|tOf\(res\))\(\s*`;
const DIRECT = new RegExp(`${CALL}${LITERAL}`, 'g');
const TERNARY = new RegExp(`${CALL}[^'"()]*?\\?\\s*${LITERAL}\\s*:\\s*${LITERAL}`, 'g');

/** A JS string literal's value (the sources use plain quotes and \\' escapes only). */
const valueOf = (literal: string) => literal.slice(1, -1).replace(/\\(.)/g, '$1');

function sources(): Array<[string, string]> {
  const views = path.join(ROOT, 'views/console');
  const files = [
    ...fs.readdirSync(views).filter((f) => f.endsWith('.ejs')).map((f) => path.join(views, f)),
    ...fs.readdirSync(path.join(views, 'partials')).filter((f) => f.endsWith('.ejs')).map((f) => path.join(views, 'partials', f)),
    ...fs.readdirSync(path.join(ROOT, 'server/dashboard')).filter((f) => f.endsWith('.ts')).map((f) => path.join(ROOT, 'server/dashboard', f)),
  ];
  // Comments name t('…') without calling it.
  return files.map((f) => [path.relative(ROOT, f), fs.readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '')]);
}

function literalTexts(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(DIRECT)) out.push(valueOf(m[1]!));
  for (const m of source.matchAll(TERNARY)) out.push(valueOf(m[1]!), valueOf(m[2]!));
  return out;
}

describe('the console catalog', () => {
  it('has a zh-CN entry for every literal t() of the console views and dashboard routes', () => {
    const missing: string[] = [];
    let found = 0;
    for (const [file, text] of sources()) {
      for (const english of literalTexts(text)) {
        found++;
        if (!(english in consoleZh)) missing.push(`${file}: ${english}`);
      }
    }
    expect(found).toBeGreaterThan(300);
    expect([...new Set(missing)]).toEqual([]);
  });

  it('keeps each entry\'s placeholders and uses full-width punctuation next to Chinese', () => {
    const bad: string[] = [];
    for (const [english, zh] of Object.entries(consoleZh)) {
      const names = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(',');
      if (names(english) !== names(zh)) bad.push(`placeholders differ: ${english}`);
      if (asciiNextToCjk.test(zh.replace(/\{\w+\}/g, 'x'))) bad.push(`ASCII punctuation: ${zh}`);
    }
    expect(bad).toEqual([]);
  });

  it('the scanner finds direct, ternary and tOf(res) texts', () => {
    expect(literalTexts(`<%= t('A {n}', { n }) %> t(x ? 'B' : "C's") tOf(res)('D') tHtml("E", {}) h.t('no') format('no')`)).toEqual(['A {n}', 'D', 'E', 'B', "C's"]);
  });
});

describe('t() and tHtml()', () => {
  it('fill placeholders; tHtml escapes the text and leaves the given markup', () => {
    expect(translator('zh-CN')('Transfer {no}', { no: 'tr_1' })).toBe('转账 tr_1');
    expect(translator('en')('Unknown <b>{x}</b>', { x: 1 })).toBe('Unknown <b>1</b>');
    expect(htmlTranslator('en')('A & {code}', { code: '<code>x</code>' })).toBe('A &amp; <code>x</code>');
  });
});

describe('the onboarding guides', () => {
  it('zh-CN has the same items, addresses and codes as English, in Chinese with full-width punctuation', () => {
    const input = { publicUrl: 'https://pay.example.com', appId: 'app_1' };
    for (const p of ONBOARDING_PROVIDERS) {
      const en = onboardingGuide(p, input);
      const zh = onboardingGuide(p, { ...input, lang: 'zh-CN' });
      expect(zh.items.map((i) => [i.id, i.yields]), p).toEqual(en.items.map((i) => [i.id, i.yields]));
      expect(zh.addresses.map((a) => a.value === '（不需要）' ? '(not needed)' : a.value), p).toEqual(en.addresses.map((a) => a.value));
      expect(zh.applyAt.map((a) => a.url), p).toEqual(en.applyAt.map((a) => a.url));
      expect(zh.products.length, p).toBe(en.products.length);
      const texts = [...zh.applyAt.map((a) => a.label), ...zh.prepare, ...zh.addresses.flatMap((a) => [a.label, a.note]), ...zh.products.flatMap((x) => [x.name, x.codes]), ...zh.items.map((i) => i.text), zh.testNote];
      expect(texts.filter((s) => asciiNextToCjk.test(s)), p).toEqual([]);
    }
  });
});
