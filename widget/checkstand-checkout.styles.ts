import { css } from 'lit';

// Kept tiny: the whole widget, Lit included, must stay under 7 KB gzipped (bench/size.ts).
export default css`
  :host {
    display: inline-block;
  }
  [part='button'] {
    font: inherit;
    font-weight: 600;
    padding: 0.6em 1.4em;
    border: 0;
    border-radius: 6px;
    background: #1677ff;
    color: #fff;
    cursor: pointer;
  }
  [part='button']:focus-visible,
  [part='close-button']:focus-visible {
    outline: 2px solid #1677ff;
    outline-offset: 2px;
  }
  dialog {
    padding: 0;
    border: 0;
    border-radius: 12px;
    width: min(480px, 100vw - 32px);
    height: min(720px, 100vh - 32px);
    max-width: none;
    max-height: none;
    overflow: hidden;
    box-shadow: 0 12px 48px #0005;
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
    align-items: center;
    border-bottom: 1px solid #eee;
    background: #fff;
    color: #222;
  }
  h2 {
    flex: 1;
    margin: 0 0 0 16px;
    font: 600 15px system-ui, sans-serif;
  }
  [part='close-button'] {
    width: 44px;
    height: 44px;
    border: 0;
    background: none;
    font-size: 22px;
    color: inherit;
    cursor: pointer;
  }
  iframe {
    flex: 1;
    width: 100%;
    border: 0;
    background: #fff;
  }
  /* Small screens: the cashier takes the whole screen (usable from 320 px wide). */
  @media (max-width: 540px), (max-height: 540px) {
    dialog {
      width: 100vw;
      height: 100vh;
      height: 100dvh;
      margin: 0;
      border-radius: 0;
    }
  }
`;
