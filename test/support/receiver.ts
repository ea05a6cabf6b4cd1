import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedWebhook {
  id: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  verified: boolean;
  payload: any;
}

/**
 * A merchant's webhook endpoint: verifies every delivery with the `standardwebhooks` package,
 * as a merchant would, and also serves a return page at /done.
 */
export async function startReceiver(opts: { respond?: (n: number) => number } = {}) {
  const received: ReceivedWebhook[] = [];
  let secret = '';
  let n = 0;
  const waiters: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>Shop</title><h1 id="thanks">Thanks for your order</h1>');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let verified = false;
      let payload: any;
      try {
        payload = new Webhook(secret).verify(body, {
          'webhook-id': String(req.headers['webhook-id']),
          'webhook-timestamp': String(req.headers['webhook-timestamp']),
          'webhook-signature': String(req.headers['webhook-signature']),
        });
        verified = true;
      } catch {
        verified = false;
      }
      received.push({ id: String(req.headers['webhook-id']), headers: req.headers, body, verified, payload });
      waiters.splice(0).forEach((w) => w());
      res.writeHead(verified ? opts.respond?.(++n) ?? 200 : 400).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    setSecret(s: string) {
      secret = s;
    },
    /** Resolves once a delivery matches, or rejects after timeoutMs. */
    async waitFor(pred: (w: ReceivedWebhook) => boolean, timeoutMs = 15_000): Promise<ReceivedWebhook> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = received.find(pred);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no matching webhook within ${timeoutMs} ms (got ${received.length})`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
