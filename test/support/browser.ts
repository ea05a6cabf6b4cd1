import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** The system Chromium (never a downloaded one): CHROME_PATH or /usr/bin/chromium. */
export const chromePath = process.env.CHROME_PATH ?? '/usr/bin/chromium';
export const haveChromium = fs.existsSync(chromePath);

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}
