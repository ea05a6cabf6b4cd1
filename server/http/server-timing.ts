import type { RequestHandler } from 'express';

/**
 * `Server-Timing: app;dur=<ms>` on every HTML page: the time from the request reaching the app to
 * its headers being written (for a rendered page, all of its queries and the render). The console
 * bench (bench/console.ts) reads it so its figures leave out the client; browsers show it in
 * their network panel.
 */
export const serverTiming: RequestHandler = (_req, res, next) => {
  const started = performance.now();
  const writeHead = res.writeHead;
  res.writeHead = function (this: typeof res, ...args: Parameters<typeof res.writeHead>) {
    if (!this.headersSent) this.setHeader('Server-Timing', `app;dur=${(performance.now() - started).toFixed(1)}`);
    return writeHead.apply(this, args);
  } as typeof res.writeHead;
  next();
};
