import { LitElement, html, nothing } from 'lit';
import styles from './checkstand-checkout.styles.ts';
import { acceptMessage, embedUrl, httpUrl, resolveMode, type CheckoutMode } from './protocol.ts';

/** How long the cashier's own success screen stays up before the modal closes. */
const SUCCESS_DELAY_MS = 1200;
/** How long a closed modal's iframe lives on, so the cashier still receives 'closing'. */
const UNLOAD_DELAY_MS = 500;

export interface CheckstandSuccessDetail {
  paymentId?: string;
  status: string;
}
export interface CheckstandErrorDetail {
  message: string;
}
/** Every event the element sends, by name, with its detail. */
export interface CheckstandEvents {
  'checkstand-success': CheckstandSuccessDetail;
  'checkstand-close': Record<string, never>;
  'checkstand-error': CheckstandErrorDetail;
}

/**
 * A pay button that opens Checkstand's hosted cashier: in a modal iframe on desktops, top level
 * on phones and in WebViews.
 *
 * @slot - The button's label.
 *
 * @event checkstand-success - The cashier says the payment succeeded: `{paymentId?, status}`. A UI
 *   hint only: fulfil orders from the verified `payment.succeeded` webhook, never from this.
 * @event checkstand-close - The customer closed the checkout (not sent after a success).
 * @event checkstand-error - The checkout cannot go on: `{message}`.
 *
 * @csspart button - The pay button.
 * @csspart dialog - The modal dialog.
 * @csspart header - The bar above the cashier that holds the close button.
 * @csspart close-button - The dialog's close button.
 * @csspart frame - The iframe that holds the cashier.
 */
export class CheckstandCheckout extends LitElement {
  static override styles = styles;
  static override properties = {
    checkoutUrl: { attribute: 'checkout-url' },
    mode: {},
    followReturn: { type: Boolean, attribute: 'follow-return' },
    label: {},
  };

  /** The payment's `checkout_url`, from `POST /v1/payments` on your server. */
  declare checkoutUrl: string;
  /** `modal`, `redirect`, or `auto`: modal on desktops, redirect on phones and in WebViews. */
  declare mode: CheckoutMode;
  /** After a success, go to the `return_url` the cashier reports (attribute `follow-return`). */
  declare followReturn: boolean;
  /** The dialog's accessible name (the cashier itself shows the merchant and amount). */
  declare label: string;
  /** No button, and the element removes itself after closing: for `Checkstand.open()`. */
  bare = false;

  // Private state uses #names: the minifier mangles those, not properties (the 7 KB budget).
  /** The cashier's origin while the modal is open, '' when closed: messages must come from it. */
  #origin = '';
  #succeeded = false;
  #opener: HTMLElement | null = null;
  #successTimer?: ReturnType<typeof setTimeout>;
  #unloadTimer?: ReturnType<typeof setTimeout>;

  constructor() {
    super();
    this.checkoutUrl = '';
    this.mode = 'auto';
    this.followReturn = false;
    this.label = 'Checkout';
  }

  /** Starts the checkout in the chosen mode, as a click on the button does. */
  async start(): Promise<void> {
    const url = httpUrl(this.checkoutUrl);
    if (!url) return this.#emit('checkstand-error', { message: 'Invalid checkout-url' });
    if (resolveMode(this.mode, navigator.userAgent) === 'redirect') return location.assign(url.href);
    if (this.#origin) return;
    this.#origin = url.origin;
    this.#succeeded = false;
    // Safari does not focus a clicked button, so the element's own button is named explicitly.
    this.#opener = this.bare ? (document.activeElement as HTMLElement | null) : this.#byPart('button');
    clearTimeout(this.#unloadTimer);
    await this.updateComplete;
    // Setting src (even to the same URL) loads a fresh cashier; Lit would skip an unchanged value.
    this.#frame()!.src = embedUrl(url.href, location.origin);
    addEventListener('message', this.#onMessage);
    this.#byPart<HTMLDialogElement>('dialog')!.showModal();
    // Focus starts on the close button (not inside the cross-origin iframe), so Escape works at once.
    this.#byPart('close-button')!.focus();
  }

  /** Closes the modal, as its close button and Escape do. */
  close(): void {
    this.#finish(!this.#succeeded);
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.#finish(false);
  }

  override render() {
    // showModal() makes the rest of the page inert: that is the focus trap. Escape closes the
    // dialog natively; its close event brings us to close(). Buttons in a shadow root belong to
    // no outer form, so they need no type="button".
    return html`<button part="button" ?hidden=${this.bare} @click=${this.start}><slot></slot></button>
      <dialog part="dialog" aria-modal="true" aria-label=${this.label} @close=${this.close}>
        <header part="header"><button part="close-button" aria-label="Close" @click=${this.close}>×</button></header>
        <iframe part="frame" title=${this.label} @load=${() => this.#post('hello')}></iframe>
      </dialog>`;
  }

  #byPart<T extends HTMLElement = HTMLElement>(name: string): T | null {
    return this.renderRoot.querySelector<T>(`[part=${name}]`);
  }

  #frame(): HTMLIFrameElement | null {
    return this.#byPart<HTMLIFrameElement>('frame');
  }

  /** Posts to the cashier, addressed to its origin only (never "*"). */
  #post(type: 'hello' | 'closing'): void {
    if (this.#origin) this.#frame()?.contentWindow?.postMessage({ source: 'checkstand-widget', type }, this.#origin);
  }

  #emit<K extends keyof CheckstandEvents>(name: K, detail: CheckstandEvents[K]): void {
    this.dispatchEvent(new CustomEvent(name, { bubbles: true, composed: true, detail }));
  }

  #finish(emitClose: boolean): void {
    if (!this.#origin) return;
    this.#post('closing');
    removeEventListener('message', this.#onMessage);
    clearTimeout(this.#successTimer);
    this.#origin = '';
    this.#byPart<HTMLDialogElement>('dialog')?.close();
    // The hidden cashier lives on a moment to receive 'closing', then stops (polling, SSE); a bare
    // element (Checkstand.open) goes altogether.
    this.#unloadTimer = setTimeout(() => (this.bare ? this.remove() : this.#frame()?.setAttribute('src', 'about:blank')), UNLOAD_DELAY_MS);
    this.#opener?.focus();
    if (emitClose) this.#emit('checkstand-close', {});
  }

  #onMessage = (event: MessageEvent): void => {
    const m = acceptMessage(event, this.#origin, this.#frame()?.contentWindow);
    if (!m) return;
    if (m.type === 'success' && !this.#succeeded) {
      this.#succeeded = true;
      this.#emit('checkstand-success', { paymentId: m.paymentId, status: m.status ?? 'succeeded' });
      // Let the customer see the cashier's own success screen for a moment.
      this.#successTimer = setTimeout(() => {
        this.#finish(false);
        const next = this.followReturn && httpUrl(m.returnUrl);
        if (next) location.assign(next.href);
      }, SUCCESS_DELAY_MS);
    } else if (m.type === 'close') this.close();
    else if (m.type === 'error') this.#emit('checkstand-error', { message: m.message ?? '' });
    // 'ready' and 'status' need nothing here: the cashier shows its own state.
  };
}

declare global {
  interface HTMLElementTagNameMap {
    'checkstand-checkout': CheckstandCheckout;
  }
  interface GlobalEventHandlersEventMap {
    'checkstand-success': CustomEvent<CheckstandSuccessDetail>;
    'checkstand-close': CustomEvent<Record<string, never>>;
    'checkstand-error': CustomEvent<CheckstandErrorDetail>;
  }
}
