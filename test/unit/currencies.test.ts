import { describe, expect, it } from 'vitest';
import { CURRENCIES, isCurrency, minorUnits, toDecimalString } from '../../server/payments/currencies.ts';
import { formatAmount } from '../../server/checkout/i18n.ts';

describe('ISO 4217 currencies', () => {
  it('knows the exponents ISO gives, not CLDR display habits', () => {
    expect(minorUnits('CNY')).toBe(2);
    expect(minorUnits('JPY')).toBe(0);
    expect(minorUnits('KRW')).toBe(0);
    // CLDR shows HUF and TWD without decimals; ISO 4217 gives them 2 (PayPal's exception is the adapter's business).
    expect(minorUnits('HUF')).toBe(2);
    expect(minorUnits('TWD')).toBe(2);
    expect(minorUnits('BHD')).toBe(3);
    expect(isCurrency('usd')).toBe(false);
    expect(isCurrency('XAU')).toBe(false);
    expect(isCurrency('ABC')).toBe(false);
    // Every code is three capital letters and known to Intl.
    const known = new Set(Intl.supportedValuesOf('currency'));
    for (const code of Object.keys(CURRENCIES)) {
      expect(code).toMatch(/^[A-Z]{3}$/);
      expect(known.has(code), code).toBe(true);
    }
    expect(Object.keys(CURRENCIES).length).toBeGreaterThan(140);
  });

  it('writes minor units as exact decimals', () => {
    expect(toDecimalString(123456, 'USD')).toBe('1234.56');
    expect(toDecimalString(5, 'EUR')).toBe('0.05');
    expect(toDecimalString(1000, 'JPY')).toBe('1000');
    expect(toDecimalString(1, 'BHD')).toBe('0.001');
    expect(toDecimalString(9_007_199_254_740_991, 'USD')).toBe('90071992547409.91');
  });

  it('formats amounts in the payment currency and the reader language', () => {
    expect(formatAmount(123456, 'CNY', 'zh-CN')).toBe('¥1,234.56');
    expect(formatAmount(123456, 'CNY', 'en')).toBe('CN¥1,234.56');
    expect(formatAmount(1234, 'USD', 'en')).toBe('$12.34');
    expect(formatAmount(1234, 'USD', 'zh-CN')).toBe('US$12.34');
    expect(formatAmount(1234, 'HKD', 'en')).toBe('HK$12.34');
    expect(formatAmount(1234, 'EUR', 'en')).toBe('€12.34');
    expect(formatAmount(1000, 'JPY', 'en')).toBe('¥1,000');
    expect(formatAmount(1000, 'JPY', 'zh-CN')).toBe('JP¥1,000');
    // The ISO decimals, whatever CLDR would show.
    expect(formatAmount(123456, 'HUF', 'en')).toMatch(/^HUF\s1,234\.56$/);
    // No float rounding on large amounts.
    expect(formatAmount(9_007_199_254_740_991, 'USD', 'en')).toBe('$90,071,992,547,409.91');
  });
});
