import { isIP } from 'node:net';
import { z } from 'zod';
import { CHANNEL_CODES, isAgreementCode, type ChannelCode } from '../channels/types.ts';
import { invalid } from '../errors.ts';

import { isCurrency } from './currencies.ts';
import { installmentsSchema } from './installments.ts';

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

const channelSchema = z.enum(CHANNEL_CODES, {
  error: (i) => (i.input === undefined ? 'is required' : `must be one of ${CHANNEL_CODES.join(', ')}`),
}).refine((c) => !isAgreementCode(c), 'alipay_agreement is charged by subscriptions only (POST /v1/subscriptions)');

// isIP also takes a zone id (fe80::1%eth0), which no address on the internet has and which
// has no length limit; the longest address written out (::ffff:255.255.255.255 in full) is 45.
export const clientIpSchema = z
  .string()
  .max(45, 'must be an IPv4 or IPv6 address')
  .refine((v) => isIP(v) !== 0 && !v.includes('%'), 'must be an IPv4 or IPv6 address, without a zone id');

/**
 * A WeChat openid (the payer's id for one appid, from the snsapi_base OAuth): 28 characters of
 * [A-Za-z0-9_-] in practice; other lengths are let through, since WeChat does not promise 28.
 */
const openidSchema = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'must be a WeChat openid: 1–128 characters of letters, digits, _ and -');

export const customerIdSchema = z.string().regex(/^cus_[A-Za-z0-9]{1,60}$/, 'must be a customer id (cus_…)');

/** An ISO 4217 code, upper-cased. */
export const currencySchema = z
  .string()
  .transform((v) => v.toUpperCase())
  .refine(isCurrency, 'must be an ISO 4217 currency code such as CNY, USD, EUR, HKD or JPY');

/** A string map of at most 50 keys, as Stripe's metadata. */
export const metadataSchema = z
  .record(z.string().max(40, 'keys must be at most 40 characters'), z.string({ error: 'values must be strings' }).max(500))
  .refine((m) => Object.keys(m).length <= 50, 'must have at most 50 keys');

export const createPaymentSchema = z
  .object({
    amount: amountSchema,
    currency: currencySchema.default('CNY'),
    subject: z.string().trim().min(1, 'must not be empty').max(127, 'must be at most 127 characters'),
    out_trade_no: z
      .string()
      .regex(/^[A-Za-z0-9_\-|*.:]{1,64}$/, 'must be 1–64 characters of letters, digits and _-|*.: (no spaces)'),
    channel: channelSchema.optional(),
    description: z.string().max(1000).optional(),
    return_url: httpUrl.optional(),
    expires_in: z.number().int().min(60, 'must be at least 60 seconds').max(15 * 86400, 'must be at most 15 days').default(7200),
    metadata: metadataSchema.default({}),
    client_ip: clientIpSchema.optional(),
    /** With channel wechat_jsapi: the payer's openid. */
    openid: openidSchema.optional(),
    /** DESIGN §2.3: the customer (cus_…) it is for; required with channel balance and purpose balance_top_up. */
    customer: customerIdSchema.optional(),
    /** A coupon's code (any case) or id (cpn_…). */
    coupon: z.string().regex(/^[A-Za-z0-9_\-.]{1,64}$/, 'must be a coupon code (1–64 characters of letters, digits and _-.) or a coupon id').optional(),
    /** The payer may type a coupon code on the cashier (until a channel order is placed). */
    allow_coupon_code: z.boolean().default(false),
    purpose: z.enum(['payment', 'balance_top_up'], { error: 'must be payment or balance_top_up' }).default('payment'),
    /** DESIGN §2.5: Alipay Huabei installments (花呗分期); with a channel, an Alipay one. */
    installments: installmentsSchema.optional(),
  })
  .strict();

export type CreatePaymentInput = z.infer<typeof createPaymentSchema>;

/** POST /v1/payments/:id/confirm: place (or switch to) a channel order now. */
export const confirmPaymentSchema = z
  .object({
    channel: channelSchema,
    client_ip: clientIpSchema.optional(),
    openid: openidSchema.optional(),
  })
  .strict();

export type ConfirmPaymentInput = z.infer<typeof confirmPaymentSchema>;

/**
 * What a channel needs from the customer before an order can be placed (DESIGN §2.1), checked
 * before anything is stored or sent: the 400 names the parameter.
 */
export function checkChannelInputs(channel: ChannelCode, given: { clientIp?: string | null; openid?: string | null }): void {
  if (channel === 'wechat_h5' && !given.clientIp) {
    throw invalid('parameter_missing', "client_ip is required for channel wechat_h5: WeChat Pay checks the payer's IP address against the one that opens its page.", 'client_ip');
  }
  if (channel === 'wechat_jsapi' && !given.openid) {
    throw invalid('parameter_missing', "openid is required for channel wechat_jsapi: the payer's openid for the app's appid, from WeChat's snsapi_base OAuth.", 'openid');
  }
  if (channel !== 'wechat_jsapi' && given.openid) {
    throw invalid('parameter_invalid', `openid is only used with channel wechat_jsapi, not ${channel}.`, 'openid');
  }
}
