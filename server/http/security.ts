import type { RequestHandler, Response } from 'express';
import helmet from 'helmet';
import { randomBase64 } from '../crypto.ts';

/** Live channel gateways a cashier form may navigate to (CSP form-action also governs the redirect after a POST). */
export const CHANNEL_FORM_TARGETS = [
  'https://openapi.alipay.com',
  'https://openapi-sandbox.dl.alipaydev.com',
  'https://mapi.alipay.com',
  'https://wx.tenpay.com',
  'https://open.weixin.qq.com',
  'https://gateway.95516.com',
  'https://gateway.test.95516.com',
  'https://www.paypal.com',
  'https://www.sandbox.paypal.com',
  // Stripe-hosted Checkout (session.url), live and test mode alike.
  'https://checkout.stripe.com',
];

const NONCE = '{nonce}';

/**
 * helmet's security headers plus a strict nonce-based CSP. The policy is assembled once; each
 * response gets a fresh nonce (res.locals.cspNonce, for the page's script and style tags).
 * frame-ancestors is 'none' until a route that knows the app calls allowFraming(). form-action
 * also governs where a form's redirects may lead, so it lists every place a form may end up.
 */
export function securityHeaders(formTargets: string[] = ["'self'", ...CHANNEL_FORM_TARGETS]): RequestHandler {
  const policy = [
    "default-src 'self'",
    `script-src 'self' 'nonce-${NONCE}'`,
    `style-src 'self' 'nonce-${NONCE}'`,
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    `form-action ${formTargets.join(' ')}`,
    "frame-ancestors 'none'",
  ].join('; ');
  const [before, between, after] = policy.split(NONCE);
  const others = helmet({
    contentSecurityPolicy: false,
    // frame-ancestors governs framing; X-Frame-Options cannot express an allow-list.
    xFrameOptions: false,
    crossOriginEmbedderPolicy: false,
    referrerPolicy: { policy: 'strict-origin-when-cross-origin' },
  });
  // helmet's other headers do not depend on the request: they are taken from it once.
  const fixed: Array<[string, string]> = [];
  const recorder = {
    setHeader: (name: string, value: string) => fixed.push([name, value]),
    removeHeader: () => undefined,
  };
  others({} as Parameters<RequestHandler>[0], recorder as unknown as Parameters<RequestHandler>[1], () => undefined);
  if (!fixed.length) throw new Error('helmet set no headers');
  return (_req, res, next) => {
    const nonce = randomBase64(16);
    res.locals.cspNonce = nonce;
    res.setHeader('Content-Security-Policy', before + nonce + between + nonce + after);
    for (const [name, value] of fixed) res.setHeader(name, value);
    next();
  };
}

/** Lets the app's registered origins (and only them) frame this response: CSP frame-ancestors. */
export function allowFraming(res: Response, origins: string[]): void {
  const header = res.getHeader('content-security-policy');
  if (typeof header !== 'string') return;
  const value = origins.length ? origins.join(' ') : "'none'";
  res.setHeader('content-security-policy', header.replace(/frame-ancestors [^;]*/, `frame-ancestors ${value}`));
}
