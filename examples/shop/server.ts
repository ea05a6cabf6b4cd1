// A demo merchant shop on its own origin (default port 4000): it creates payments server side
// with its secret key, embeds the Checkstand widget pinned with SRI, and marks orders paid only
// from verified payment.succeeded webhooks. Run it alone with `npx tsx examples/shop/server.ts`.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import express, { type Request, type Response } from 'express';
import { Checkstand, type Event, type Payment } from '../../clients/node/src/index.ts';
import { ROOT } from '../../server/root.ts';
import { STATUS_TEXT, messagePage, orderPage, productsPage, type Order, type Product, type WidgetScript } from './pages.ts';

export interface ShopOptions {
  /** The gateway's base URL, e.g. http://localhost:3000 (API calls, and the widget script). */
  gatewayUrl: string;
  /** Where the widget and its manifest are served, when not from gatewayUrl (a CDN in front of it). */
  widgetUrl?: string;
  /** The app's test secret key (sk_test_…). */
  secretKey: string;
  /** 4000 by default (an origin the demo app registers); 0 picks a free port. */
  port?: number;
  /** The webhook endpoint's whsec_… secret; without one the shop registers its endpoint itself. */
  webhookSecret?: string;
  /** Listen address: 127.0.0.1 by default. */
  host?: string;
  /** The shop's own URL as the gateway and browsers reach it: http://127.0.0.1:<port> by default. */
  publicUrl?: string;
}

export interface Shop {
  url: string;
  server: http.Server;
  /** The in-memory order store, by order id. */
  orders: Map<string, Order>;
  close(): Promise<void>;
}

export const PRODUCTS: Product[] = [
  { id: 'longjing', name: 'Longjing green tea, 250 g', amount: 12800 },
  { id: 'mug', name: 'Celadon tea mug', amount: 6800 },
  { id: 'sample', name: 'Tasting sample', amount: 1 },
];

// From the checkout's root, so the sources and the compiled copy in dist/ serve the same files.
const here = path.join(ROOT, 'examples/shop');

/** The shop's API client: the typed Checkstand client, with the shop's secret key. */
function gatewayClient(opts: { gatewayUrl: string; secretKey: string }): Checkstand {
  return new Checkstand({ apiKey: opts.secretKey, baseUrl: opts.gatewayUrl });
}

/**
 * Registers `${shopUrl}/webhooks` on the gateway for payment.succeeded and payment.closed and
 * returns its whsec_ secret. Endpoints already registered for that URL are deleted first: their
 * secrets were shown once and are gone, so they could only ever fail.
 */
export async function registerShopWebhook(opts: { gatewayUrl: string; secretKey: string; shopUrl: string }): Promise<string> {
  const gateway = gatewayClient(opts);
  const url = `${opts.shopUrl}/webhooks`;
  const list = await gateway.webhookEndpoints.list({ limit: 100 });
  for (const ep of list.data) if (ep.url === url) await gateway.webhookEndpoints.del(ep.id);
  const created = await gateway.webhookEndpoints.create({ url, enabled_events: ['payment.succeeded', 'payment.closed'] });
  return created.secret;
}

/** Builds the shop's Express app (never listens). */
export function createShopApp(opts: ShopOptions & { publicUrl: string; webhookSecret: string }, orders: Map<string, Order>): express.Express {
  const app = express();
  app.disable('x-powered-by');
  const widgetOrigin = new URL(opts.widgetUrl ?? opts.gatewayUrl).origin;
  const gateway = gatewayClient(opts);

  let widget: { value?: WidgetScript; at: number } = { at: 0 };
  // The manifest names the immutable, versioned URL and its SRI hash; re-read it every minute
  // so a gateway upgrade is picked up.
  async function widgetScript(): Promise<WidgetScript | undefined> {
    if (widget.value && Date.now() - widget.at < 60_000) return widget.value;
    try {
      const res = await fetch(`${widgetOrigin}/widget/manifest.json`);
      if (!res.ok) throw new Error(String(res.status));
      const m = (await res.json()) as { version: string; files: Record<string, { sri: string }> };
      widget = { value: { src: `${widgetOrigin}/widget/${encodeURIComponent(m.version)}/widget.js`, integrity: m.files['widget.js'].sri }, at: Date.now() };
    } catch {
      widget = { value: undefined, at: 0 }; // the page then offers the plain cashier link
    }
    return widget.value;
  }

  app.use((_req, res, next) => {
    res.set({
      'Content-Security-Policy': cspFor(widgetOrigin),
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'strict-origin-when-cross-origin',
    });
    next();
  });
  app.use(express.static(path.join(here, 'public'), { index: false, maxAge: '5m' }));

  app.get('/favicon.ico', (_req, res) => {
    res.status(204).end();
  });
  app.get('/', (_req, res) => {
    res.type('html').send(productsPage(PRODUCTS));
  });

  app.post('/orders', express.urlencoded({ extended: false, limit: '4kb' }), async (req, res) => {
    if (!sameOrigin(req)) return res.status(403).type('html').send(messagePage('Forbidden', 'Cross-site form posts are refused.'));
    const product = PRODUCTS.find((p) => p.id === req.body?.product);
    if (!product) return res.status(400).type('html').send(messagePage('Unknown product', 'Pick a product from the list.'));
    const id = `ord_${crypto.randomBytes(8).toString('hex')}`;
    let payment: Payment;
    try {
      // The order id is both the merchant's out_trade_no and the idempotency key: a retried
      // request can never create a second payment for one order.
      payment = await gateway.payments.create({
        amount: product.amount,
        currency: 'CNY',
        subject: product.name,
        out_trade_no: id,
        return_url: `${opts.publicUrl}/orders/${id}`,
        metadata: { order_id: id },
      }, { idempotencyKey: `create-payment-${id}` });
    } catch (err) {
      return res.status(502).type('html').send(messagePage('Payment unavailable', (err as Error).message));
    }
    orders.set(id, { id, product, amount: product.amount, currency: 'CNY', status: 'pending', paymentId: payment.id, checkoutUrl: payment.checkout_url, created: Date.now() });
    res.redirect(303, `/orders/${id}`);
  });

  app.get('/orders/:id', async (req, res) => {
    const order = orders.get(req.params.id);
    if (!order) return res.status(404).type('html').send(messagePage('Not found', 'No such order.'));
    res.set('Cache-Control', 'no-store');
    // The cashier runs on the checkout URL's origin: that is what the page may frame.
    res.set('Content-Security-Policy', cspFor(widgetOrigin, new URL(order.checkoutUrl).origin));
    res.type('html').send(orderPage(order, order.status === 'pending' ? await widgetScript() : undefined));
  });

  app.get('/orders/:id/status', (req, res) => {
    const order = orders.get(req.params.id);
    if (!order) return res.status(404).json({ error: 'not_found' });
    res.set('Cache-Control', 'no-store').json({ id: order.id, status: order.status, status_text: STATUS_TEXT[order.status] });
  });

  // The raw body is what was signed: parse JSON only after the signature verifies.
  app.post('/webhooks', express.text({ type: '*/*', limit: '256kb' }), (req, res) => {
    let event: Event;
    try {
      event = gateway.webhooks.verify(typeof req.body === 'string' ? req.body : '', req.headers, opts.webhookSecret);
    } catch {
      return res.status(400).json({ error: 'invalid signature' });
    }
    applyEvent(orders, event);
    res.status(204).end();
  });

  return app;
}

/**
 * Applies a verified event. payment.succeeded marks an order paid only when the payment is the
 * order's own and its amount and currency match; anything else is acknowledged and ignored
 * (a retry would not change it).
 */
export function applyEvent(orders: Map<string, Order>, event: Event): void {
  if (event.type !== 'payment.succeeded' && event.type !== 'payment.closed') return;
  const payment = event.data.object;
  const order = orders.get(payment.metadata.order_id ?? payment.out_trade_no);
  if (!order || payment.id !== order.paymentId) return;
  if (event.type === 'payment.succeeded' && payment.status === 'succeeded' && payment.amount === order.amount && payment.currency === order.currency) {
    order.status = 'paid';
  } else if (event.type === 'payment.closed' && order.status === 'pending') {
    order.status = 'closed';
  }
}

/** Scripts from the shop and the widget's origin only; frames only from the cashier's origin. */
function cspFor(widgetOrigin: string, frameOrigin = widgetOrigin): string {
  return [
    "default-src 'self'",
    `script-src 'self' ${widgetOrigin}`,
    `frame-src ${frameOrigin}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** A form post from the shop's own pages (Fetch Metadata, then Origin): a cheap CSRF check. */
function sameOrigin(req: Request): boolean {
  const site = req.get('sec-fetch-site');
  if (site) return site === 'same-origin' || site === 'none';
  const origin = req.get('origin');
  return !origin || origin === `${req.protocol}://${req.get('host')}`;
}

/** Starts the shop; without a webhookSecret it registers its webhook endpoint on the gateway. */
export async function startShop(opts: ShopOptions): Promise<Shop> {
  const host = opts.host ?? '127.0.0.1';
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 4000, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const publicUrl = (opts.publicUrl ?? `http://${host}:${port}`).replace(/\/$/, '');
  try {
    const webhookSecret = opts.webhookSecret ?? (await registerShopWebhook({ gatewayUrl: opts.gatewayUrl, secretKey: opts.secretKey, shopUrl: publicUrl }));
    const orders = new Map<string, Order>();
    server.on('request', createShopApp({ ...opts, publicUrl, webhookSecret }, orders));
    return {
      url: publicUrl,
      server,
      orders,
      close: () => new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
    };
  } catch (err) {
    server.close();
    throw err;
  }
}

/**
 * Starts the shop beside a gateway with the demo app's test key from <dataDir>/demo-app.json
 * (what `checkstand serve` writes on the first start). Never throws: it answers undefined and a
 * one-line reason, so the gateway runs on without its shop (port taken, no demo app).
 */
export async function startDemoShop(opts: { gatewayUrl: string; dataDir: string; port?: number }): Promise<{ shop?: Shop; reason?: string }> {
  let secretKey: string;
  try {
    secretKey = JSON.parse(fs.readFileSync(path.join(opts.dataDir, 'demo-app.json'), 'utf8')).secret_key;
  } catch {
    return { reason: `no demo app keys in ${path.join(opts.dataDir, 'demo-app.json')}` };
  }
  try {
    return { shop: await startShop({ gatewayUrl: opts.gatewayUrl, secretKey, port: opts.port ?? 4000 }) };
  } catch (err) {
    return { reason: (err as Error).message };
  }
}

// Standalone: GATEWAY_URL (http://localhost:3000), SHOP_SECRET_KEY (else data/demo-app.json),
// SHOP_PORT (4000), SHOP_WEBHOOK_SECRET (else the shop registers its endpoint).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const gatewayUrl = process.env.GATEWAY_URL ?? 'http://localhost:3000';
  const dataDir = path.join(ROOT, 'data');
  try {
    const secretKey = process.env.SHOP_SECRET_KEY ?? JSON.parse(fs.readFileSync(path.join(dataDir, 'demo-app.json'), 'utf8')).secret_key;
    const shop = await startShop({ gatewayUrl, secretKey, port: Number(process.env.SHOP_PORT ?? 4000), webhookSecret: process.env.SHOP_WEBHOOK_SECRET });
    process.stdout.write(`Demo shop on ${shop.url} (gateway ${gatewayUrl})\n`);
    const stop = () => void shop.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  } catch (err) {
    process.stderr.write(`The demo shop could not start: ${(err as Error).message} (is the gateway running at ${gatewayUrl}? set SHOP_SECRET_KEY or start it once to write data/demo-app.json)\n`);
    process.exitCode = 1;
  }
}
