// The widget's half of the postMessage protocol with the hosted cashier (DESIGN.md §2 "Hosted
// cashier and widget"). Pure functions, so the origin rules are unit-tested without a browser.

/** How the checkout opens: a modal iframe, a top-level redirect, or whichever suits the device. */
export type CheckoutMode = 'auto' | 'modal' | 'redirect';

/** What the cashier posts to the page that embeds it. */
export interface CashierMessage {
  source: 'checkstand';
  type: 'ready' | 'status' | 'success' | 'close' | 'error';
  paymentId?: string;
  status?: string;
  message?: string;
  returnUrl?: string;
}

// Phones and in-app browsers (WeChat, Alipay, Android WebViews) get the cashier top level: their
// channels hand off to apps, which third-party iframes cannot do.
const HANDHELD = /Mobi|Android|iPhone|iPad|MicroMessenger|AlipayClient|; wv/;

/** The mode actually used: `auto` becomes `redirect` on handhelds and in WebViews, else `modal`. */
export function resolveMode(mode: string | null | undefined, userAgent: string): 'modal' | 'redirect' {
  if (mode === 'modal' || mode === 'redirect') return mode;
  return HANDHELD.test(userAgent) ? 'redirect' : 'modal';
}

/** The checkout URL if it is an absolute http(s) URL (never javascript: or data:), else undefined. */
export function httpUrl(value: string | null | undefined): URL | undefined {
  try {
    const url = new URL(value ?? '');
    return url.protocol === 'https:' || url.protocol === 'http:' ? url : undefined;
  } catch {
    return undefined;
  }
}

/** The iframe's URL: the cashier learns it is embedded and which origin to post to. */
export function embedUrl(checkoutUrl: string, parentOrigin: string): string {
  return checkoutUrl + (checkoutUrl.includes('?') ? '&' : '?') + 'embed=1&parent_origin=' + encodeURIComponent(parentOrigin);
}

/**
 * The message if it came from the cashier this widget framed: the exact origin AND the very
 * iframe's window (another frame of that origin is refused), else undefined. Unknown types fall
 * through the widget's switch untouched.
 */
export function acceptMessage(
  event: { origin: string; source: unknown; data: unknown },
  cashierOrigin: string,
  frameWindow: unknown,
): CashierMessage | undefined {
  const d = event.data as CashierMessage | null;
  return cashierOrigin && event.origin === cashierOrigin && frameWindow && event.source === frameWindow && d?.source === 'checkstand' ? d : undefined;
}
