// The widget's entry: registers <checkstand-checkout> and exports open(). Built by Vite into
// public/build/widget.js (classic script: these exports become window.Checkstand, so
// Checkstand.open()) and widget.mjs (ES module: import { open } from '…/widget.mjs').
import { CheckstandCheckout } from './checkstand-checkout.ts';
import type { CheckoutMode } from './protocol.ts';

export { CheckstandCheckout };
export type { CheckoutMode };
export type { CheckstandErrorDetail, CheckstandEvents, CheckstandSuccessDetail } from './checkstand-checkout.ts';

/** Options of Checkstand.open(). */
export interface OpenOptions {
  /** `modal` (default), `redirect`, or `auto` (redirect on phones and in WebViews). */
  mode?: CheckoutMode;
  /** After a success, go to the payment's return_url. */
  followReturn?: boolean;
  /** The dialog's title and accessible name. */
  label?: string;
}

/** How a checkout opened by Checkstand.open() ended. A UI hint only: fulfil orders from webhooks. */
export interface CheckoutResult {
  status: 'succeeded' | 'closed';
  paymentId?: string;
}

// Both builds may end up on one page; the first one registers.
if (!customElements.get('checkstand-checkout')) customElements.define('checkstand-checkout', CheckstandCheckout);

/**
 * Opens the cashier for `url` without a button. Resolves when the customer pays or closes it,
 * rejects on a checkout error; in redirect mode the page navigates away and it never settles.
 */
export function open(url: string, options: OpenOptions = {}): Promise<CheckoutResult> {
  const el = document.createElement('checkstand-checkout');
  el.bare = true;
  el.checkoutUrl = url;
  el.mode = options.mode ?? 'modal';
  el.followReturn = !!options.followReturn;
  if (options.label) el.label = options.label;
  // The element leaves the page once its modal is gone (after the success screen and unload).
  const dispose = (ms: number) => setTimeout(() => el.remove(), ms);
  return new Promise<CheckoutResult>((resolve, reject) => {
    el.addEventListener('checkstand-success', (e) => {
      resolve({ status: 'succeeded', paymentId: e.detail.paymentId });
      dispose(3000);
    });
    el.addEventListener('checkstand-close', () => {
      resolve({ status: 'closed' });
      dispose(1000);
    });
    el.addEventListener('checkstand-error', (e) => {
      reject(new Error(e.detail.message));
      // An open modal stays up so the customer can read the cashier's explanation, then close it.
      if (!el.shadowRoot?.querySelector('dialog')?.open) dispose(0);
    });
    document.body.append(el);
    void el.start();
  });
}
