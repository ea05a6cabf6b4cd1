import { isIP } from 'node:net';
import { z } from 'zod';
import { CHANNEL_CODES } from '../channels/types.ts';

/** Currencies and their minor-unit exponent; amounts are integers in the minor unit. */
export const CURRENCIES: Record<string, number> = { CNY: 2, HKD: 2, USD: 2, EUR: 2, GBP: 2, JPY: 0, SGD: 2, AUD: 2, CAD: 2 };

/** 100,000,000.00 yuan: Alipay's single-payment ceiling, the highest of our channels. */
export const MAX_AMOUNT = 10_000_000_000;

export const amountSchema = z
  .number({ error: (i) => (i.input === undefined ? 'is required' : 'must be an integer number of the minor unit (fen), e.g. 100 for ¥1.00') })
  .int('must be an integer number of the minor unit (fen), e.g. 100 for ¥1.00')
  .min(1, 'must be at least 1')
  .max(MAX_AMOUNT, `must be at most ${MAX_AMOUNT}`);

const httpUrl = z
  .string()
  .max(2048)
  .url('must be an absolute http(s) URL')
  .refine((v) => /^https?:\/\//i.test(v), 'must be an absolute http(s) URL');

export const createPaymentSchema = z
  .object({
    amount: amountSchema,
    currency: z
      .string()
      .transform((v) => v.toUpperCase())
      .refine((v) => v in CURRENCIES, `must be one of ${Object.keys(CURRENCIES).join(', ')}`)
      .default('CNY'),
    subject: z.string().trim().min(1, 'must not be empty').max(127, 'must be at most 127 characters'),
    out_trade_no: z
      .string()
      .regex(/^[A-Za-z0-9_\-|*.:]{1,64}$/, 'must be 1–64 characters of letters, digits and _-|*.: (no spaces)'),
    channel: z.enum(CHANNEL_CODES, { error: `must be one of ${CHANNEL_CODES.join(', ')}` }).optional(),
    description: z.string().max(1000).optional(),
    return_url: httpUrl.optional(),
    expires_in: z.number().int().min(60, 'must be at least 60 seconds').max(15 * 86400, 'must be at most 15 days').default(7200),
    metadata: z
      .record(z.string().max(40, 'keys must be at most 40 characters'), z.string({ error: 'values must be strings' }).max(500))
      .refine((m) => Object.keys(m).length <= 50, 'must have at most 50 keys')
      .default({}),
    // isIP also takes a zone id (fe80::1%eth0), which no address on the internet has and which
    // has no length limit; the longest address written out (::ffff:255.255.255.255 in full) is 45.
    client_ip: z
      .string()
      .max(45, 'must be an IPv4 or IPv6 address')
      .refine((v) => isIP(v) !== 0 && !v.includes('%'), 'must be an IPv4 or IPv6 address, without a zone id')
      .optional(),
  })
  .strict();

export type CreatePaymentInput = z.infer<typeof createPaymentSchema>;

/**
 * Body of POST /v1/payments/:id/confirm (DESIGN §2.1): place a new channel order now, or switch
 * channel. `client_ip` is needed for wechat_h5, `openid` (the payer's id under the merchant's
 * WeChat appid) for wechat_jsapi.
 */
export const confirmPaymentSchema = z
  .object({
    channel: createPaymentSchema.shape.channel.unwrap(),
    client_ip: createPaymentSchema.shape.client_ip,
    openid: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be a WeChat openid: letters, digits, _ and -').optional(),
  })
  .strict();
