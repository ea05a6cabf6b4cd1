// The widget's entry: registers <checkstand-checkout> and exports open(). Built by Vite into
// public/build/widget.js (classic script: these exports become window.Checkstand, so
// Checkstand.open()) and widget.mjs (ES module: import { open } from '…/widget.mjs').
import { CheckstandCheckout } from './checkstand-checkout.ts';
import { httpUrl, type CheckoutMode } from './protocol.ts';

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
export function open(url: string, { mode = 'modal', followReturn = false, label = 'Checkout' }: OpenOptions = {}): Promise<CheckoutResult> {
  if (!httpUrl(url)) return Promise.reject(new Error('Invalid checkout-url'));
  // A bare element removes itself once its modal has closed.
  const el = Object.assign(document.createElement('checkstand-checkout'), { bare: true, checkoutUrl: url, mode, followReturn, label });
  return new Promise<CheckoutResult>((resolve, reject) => {
    el.addEventListener('checkstand-success', (e) => resolve({ status: 'succeeded', paymentId: e.detail.paymentId }));
    el.addEventListener('checkstand-close', () => resolve({ status: 'closed' }));
    // After an error the modal stays up, so the customer can read the cashier's explanation.
    el.addEventListener('checkstand-error', (e) => reject(new Error(e.detail.message)));
    document.body.append(el);
    void el.start();
  });
}
