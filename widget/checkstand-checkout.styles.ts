import { unsafeCSS } from 'lit';

// Deliberately plain (restyle through ::part()): the whole widget, Lit included, must stay under
// 7 KB gzipped (bench/size.ts). unsafeCSS on our own literal (no interpolation, no input) rather
// than css``, whose runtime interpolation check and its error text cost ~100 bytes of that budget.
export default unsafeCSS(/* css */ `
  :host {
    display: inline-block;
  }
  [part=button] {
    font: inherit;
    padding: 0.6em 1.4em;
    border: 0;
    border-radius: 6px;
    background: #1677ff;
    color: #fff;
    cursor: pointer;
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
    display: flex;
  }
  h2 {
    flex: 1;
    margin: auto 16px;
    font: 600 15px system-ui;
  }
  [part=close-button] {
    width: 44px;
    height: 44px;
    border: 0;
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
