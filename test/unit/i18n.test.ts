import fs from 'node:fs';
import path from 'node:path';
import ejs from 'ejs';
import { describe, expect, it } from 'vitest';
import { declinedText, formatCountdown, messagesFor } from '../../server/checkout/i18n.ts';

const CJK = '\\u3000-\\u303f\\u3400-\\u9fff\\uff00-\\uffef';
/**
 * ASCII , : ; ? ! ( ) touching a Chinese character, or an ASCII "(" opening after Chinese text
 * ("收银台 (…)"): full-width belongs there. English punctuation before a Chinese value
 * ("Error code: 错误") is English and stays.
 */
const asciiPunctuationNextToCjk = new RegExp(`[${CJK}][,:;?!()]|[,:;?!()][${CJK}]|[${CJK}] \\(`, 'u');

describe('zh-CN messages', () => {
  it('use full-width punctuation next to Chinese text', () => {
    const zh = messagesFor('zh-CN');
    const bad = Object.entries(zh).filter(([, text]) => asciiPunctuationNextToCjk.test(text));
    expect(bad).toEqual([]);
  });

  it('every key is translated in both languages', () => {
    const zh = messagesFor('zh-CN');
    const en = messagesFor('en');
    expect(Object.keys(en).sort()).toEqual(Object.keys(zh).sort());
    // English text carries no Chinese, except the language switch and channel names that are the same.
    const untranslated = Object.entries(en).filter(([key, text]) => key !== 'language' && new RegExp(`[${CJK}]`, 'u').test(text));
    expect(untranslated).toEqual([]);
  });

  it('the sandbox payer pages (zh-CN) use full-width punctuation next to Chinese text', async () => {
    const dir = path.resolve(import.meta.dirname, '../../views/sandbox');
    const order = { cspNonce: 'n', actionUrl: '/a', appId: '2021', outTradeNo: 'cs1', tradeNo: '2025', token: 't', subject: '绿茶', body: '一盒', description: '绿茶', amount: '12.34', mchid: '1900', expiresAt: '2025-01-01 12:00:00', redirectUrl: '', returnUrl: '' };
    const renders: Array<[string, Record<string, unknown>]> = [];
    for (const [mobile, viaQr] of [[false, false], [true, false], [false, true]]) renders.push(['alipay-cashier', { ...order, mobile, viaQr }]);
    for (const mode of ['scan', 'h5', 'jsapi']) renders.push(['wechatpay-pay', { ...order, mode }]);
    for (const kind of ['paid', 'failed', 'cancelled', 'error']) {
      for (const page of ['alipay-result', 'wechatpay-result']) renders.push([page, { cspNonce: 'n', kind, code: 'X', message: '已取消支付', link: '/back' }]);
    }
    const bad: string[] = [];
    for (const [page, locals] of renders) {
      const html = await ejs.renderFile(path.join(dir, `${page}.ejs`), locals);
      // The text a payer sees: markup and styles removed, line by line.
      const text = html.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, '');
      for (const line of text.split('\n')) if (asciiPunctuationNextToCjk.test(line)) bad.push(`${page}: ${line.trim()}`);
    }
    expect([...new Set(bad)]).toEqual([]);
  });

  it('the checker itself catches ASCII punctuation beside Chinese and leaves English alone', () => {
    for (const s of ['测试模式:不会', '已关闭,无法', '收银台 (Alipay)', '（北京时间)', '好吗?']) expect(asciiPunctuationNextToCjk.test(s), s).toBe(true);
    for (const s of ['测试模式：不会', 'Test mode: no money', 'Error code: 错误', '支付宝 · Alipay']) expect(asciiPunctuationNextToCjk.test(s), s).toBe(false);
  });
});

describe('countdown', () => {
  const zh = messagesFor('zh-CN');
  const en = messagesFor('en');
  it('shows minutes and seconds under an hour', () => {
    expect(formatCountdown(0, en)).toBe('0:00');
    expect(formatCountdown(59, en)).toBe('0:59');
    expect(formatCountdown(3599, en)).toBe('59:59');
  });
  it('shows hours from one hour on (two hours is 1:59:29, not 119:29)', () => {
    expect(formatCountdown(3600, en)).toBe('1:00:00');
    expect(formatCountdown(7169, en)).toBe('1:59:29');
    expect(formatCountdown(7200, zh)).toBe('2:00:00');
    expect(formatCountdown(86399, en)).toBe('23:59:59');
  });
  it('shows days from one day on (payments may stay open 15 days)', () => {
    expect(formatCountdown(86400, en)).toBe('1d 0:00:00');
    expect(formatCountdown(90061, zh)).toBe('1天 1:01:01');
    expect(formatCountdown(15 * 86400, en)).toBe('15d 0:00:00');
  });
  it('never goes below zero and ignores fractions', () => {
    expect(formatCountdown(-5, en)).toBe('0:00');
    expect(formatCountdown(61.9, en)).toBe('1:01');
  });
});

describe('a channel\'s decline', () => {
  it('sits in the sentence with the payer\'s punctuation, not the channel\'s', () => {
    expect(declinedText(messagesFor('zh-CN'), '余额不足。')).toBe('支付渠道拒绝了这次支付：余额不足。请重试或换一种支付方式。');
    expect(declinedText(messagesFor('en'), 'Insufficient balance.')).toBe('The payment channel declined this payment: Insufficient balance. Please try again or choose another method.');
  });
});
