/**
 * ISO 4217: the active currency codes and their minor-unit exponents (the number of decimals of
 * the currency's minor unit). Amounts in the API are integers in that minor unit; only adapters
 * turn them into a channel's own format, which may differ (PayPal counts HUF and TWD in whole
 * units). Funds codes, precious metals and testing codes are left out: no channel takes them.
 */
const ZERO = ['BIF', 'CLP', 'DJF', 'GNF', 'ISK', 'JPY', 'KMF', 'KRW', 'PYG', 'RWF', 'UGX', 'VND', 'VUV', 'XAF', 'XOF', 'XPF'];
const THREE = ['BHD', 'IQD', 'JOD', 'KWD', 'LYD', 'OMR', 'TND'];
const TWO = [
  'AED', 'AFN', 'ALL', 'AMD', 'AOA', 'ARS', 'AUD', 'AWG', 'AZN', 'BAM', 'BBD', 'BDT', 'BGN', 'BMD', 'BND', 'BOB', 'BRL', 'BSD',
  'BTN', 'BWP', 'BYN', 'BZD', 'CAD', 'CDF', 'CHF', 'CNY', 'COP', 'CRC', 'CUP', 'CVE', 'CZK', 'DKK', 'DOP', 'DZD', 'EGP', 'ERN',
  'ETB', 'EUR', 'FJD', 'FKP', 'GBP', 'GEL', 'GHS', 'GIP', 'GMD', 'GTQ', 'GYD', 'HKD', 'HNL', 'HTG', 'HUF', 'IDR', 'ILS', 'INR',
  'IRR', 'JMD', 'KES', 'KGS', 'KHR', 'KPW', 'KYD', 'KZT', 'LAK', 'LBP', 'LKR', 'LRD', 'LSL', 'MAD', 'MDL', 'MGA', 'MKD', 'MMK',
  'MNT', 'MOP', 'MRU', 'MUR', 'MVR', 'MWK', 'MXN', 'MYR', 'MZN', 'NAD', 'NGN', 'NIO', 'NOK', 'NPR', 'NZD', 'PAB', 'PEN', 'PGK',
  'PHP', 'PKR', 'PLN', 'QAR', 'RON', 'RSD', 'RUB', 'SAR', 'SBD', 'SCR', 'SDG', 'SEK', 'SGD', 'SHP', 'SLE', 'SOS', 'SRD', 'SSP',
  'STN', 'SVC', 'SYP', 'SZL', 'THB', 'TJS', 'TMT', 'TOP', 'TRY', 'TTD', 'TWD', 'TZS', 'UAH', 'USD', 'UYU', 'UZS', 'VES', 'WST',
  'XCD', 'YER', 'ZAR', 'ZMW', 'ZWG',
];

export const CURRENCIES: Readonly<Record<string, number>> = Object.freeze(
  Object.fromEntries([...ZERO.map((c) => [c, 0]), ...TWO.map((c) => [c, 2]), ...THREE.map((c) => [c, 3])].sort(([a], [b]) => String(a).localeCompare(String(b)))),
);

export const isCurrency = (code: string): boolean => Object.hasOwn(CURRENCIES, code);

/** The currency's ISO 4217 exponent (codes are validated when a payment is created; 2 for anything else). */
export function minorUnits(currency: string): number {
  return CURRENCIES[currency] ?? 2;
}

/** An amount in minor units as an exact decimal string: 123456 JPY → "123456", 123456 USD → "1234.56", 1 BHD → "0.001". */
export function toDecimalString(amount: number, currency: string): string {
  const exp = minorUnits(currency);
  const sign = amount < 0 ? '-' : '';
  const digits = String(Math.abs(amount));
  if (exp === 0) return sign + digits;
  const padded = digits.padStart(exp + 1, '0');
  return `${sign}${padded.slice(0, -exp)}.${padded.slice(-exp)}`;
}
