import { unsafeCSS } from 'lit';

// Deliberately plain (restyle through ::part()): the whole widget, Lit included, must stay under
// 7 KB gzipped (bench/size.ts). unsafeCSS on our own literal (no interpolation, no input) rather
// than css``, whose runtime interpolation check and its error text cost ~100 bytes of that budget.
export default unsafeCSS(/* css */ `
  :host {
    display: inline-block;
  }
  button {
    font: inherit;
    border: 0;
    cursor: pointer;
  }
  [part=button] {
    padding: 0.6em 1.4em;
    border-radius: 6px;
    background: #1677ff;
    color: #fff;
  }
  /* The dialog's default max-width/height keep it inside smaller viewports. */
  dialog {
    padding: 0;
    border: 0;
    border-radius: 12px;
    width: 480px;
    height: 720px;
  }
  dialog[open] {
    display: flex;
    flex-direction: column;
  }
  dialog::backdrop {
    background: #0008;
  }
  header {
    text-align: right;
  }
  [part=close-button] {
    width: 44px;
    height: 44px;
    background: none;
    font-size: 22px;
  }
  iframe {
    flex: 1;
    border: 0;
  }
  /* Small screens: the cashier takes the whole screen (usable from 320 px wide). */
  @media (max-width: 540px), (max-height: 540px) {
    dialog {
      max-width: none;
      max-height: none;
      width: 100%;
      height: 100%;
      border-radius: 0;
    }
  }
`);
