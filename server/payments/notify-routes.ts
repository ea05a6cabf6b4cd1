import express, { Router, type ErrorRequestHandler } from 'express';
import type { Deps } from '../deps.ts';
import { channelFor, isProvider } from '../channels/registry.ts';
import { handleNotify } from './notify.ts';

/** POST /notify/:provider/:app — channels' async notifications, answered in each channel's own words. */
export function createNotifyRoutes(deps: Deps): Router {
  const r = Router();
  // Raw bytes: signatures cover the body exactly as sent. 64 KB is far above any real notify.
  r.post('/:provider/:app', express.raw({ type: () => true, limit: '64kb' }), async (req, res) => {
    const provider = req.params.provider;
    if (!isProvider(provider) || !channelFor(provider)) return res.status(404).type('text/plain').send('unknown channel');
    const headers: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const outcome = await handleNotify(deps, provider, String(req.params.app), {
      headers,
      contentType: req.get('content-type') ?? '',
      body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
    });
    res.status(outcome.ack.status).type(outcome.ack.contentType).send(outcome.ack.body);
  });
  // Oversized or unreadable bodies: refused in the channel's terms so that it retries, never a stack trace.
  const refuse: ErrorRequestHandler = (err, req, res, _next) => {
    const provider = String(req.params.provider ?? '');
    const adapter = provider && isProvider(provider) ? channelFor(provider) : undefined;
    deps.logger.warn('channel notify refused', { provider, reason: (err as Error).message });
    const ack = adapter?.acknowledge(false) ?? { status: 400, contentType: 'text/plain', body: 'fail' };
    res.status((err as { status?: number }).status === 413 ? 413 : ack.status).type(ack.contentType).send(ack.body);
  };
  r.post('/:provider/:app', refuse);
  return r;
}
