// The demo shop's HTML. No inline scripts or styles: the shop's CSP forbids them, as a real
// merchant's should.

export interface Product {
  id: string;
  name: string;
  /** Minor units (fen). */
  amount: number;
}

export type OrderStatus = 'pending' | 'paid' | 'closed';

export interface Order {
  id: string;
  product: Product;
  amount: number;
  currency: string;
  status: OrderStatus;
  paymentId: string;
  checkoutUrl: string;
  created: number;
}

/** The widget as the gateway's manifest describes it: a pinned URL and its SRI hash. */
export interface WidgetScript {
  src: string;
  integrity: string;
}

const esc = (s: unknown) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export const price = (fen: number) => `¥${(fen / 100).toFixed(2)}`;

const STATUS_TEXT: Record<OrderStatus, string> = {
  pending: 'Waiting for payment',
  paid: 'Paid',
  closed: 'Closed (not paid)',
};

function layout(title: string, body: string, scripts = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Teahouse demo shop</title>
<link rel="stylesheet" href="/shop.css">
${scripts}
</head>
<body>
<header><a href="/">Teahouse</a> <small>a demo merchant for Checkstand</small></header>
<main>
${body}
</main>
</body>
</html>
`;
}

export function productsPage(products: Product[]): string {
  const items = products
    .map((p) => `<li class="product">
  <h2>${esc(p.name)}</h2>
  <p class="price">${price(p.amount)}</p>
  <form method="post" action="/orders"><input type="hidden" name="product" value="${esc(p.id)}"><button type="submit" data-buy="${esc(p.id)}">Buy</button></form>
</li>`)
    .join('\n');
  return layout('Products', `<h1>Products</h1>\n<ul class="products">\n${items}\n</ul>`);
}

/** The order's own page: the pay widget while pending, and the status the shop's webhooks set. */
export function orderPage(order: Order, widget: WidgetScript | undefined): string {
  const pending = order.status === 'pending';
  const scripts = `<script src="/shop.js" defer></script>${
    widget && pending ? `\n<script src="${esc(widget.src)}" integrity="${esc(widget.integrity)}" crossorigin="anonymous" defer></script>` : ''
  }`;
  const pay = pending
    ? `<div class="pay">
  <checkstand-checkout checkout-url="${esc(order.checkoutUrl)}" mode="auto">Pay ${price(order.amount)}</checkstand-checkout>
  <p class="fallback">Button not working? <a href="${esc(order.checkoutUrl)}">Open the cashier</a>.</p>
</div>`
    : '';
  return layout(`Order ${order.id}`, `<h1>Order <code>${esc(order.id)}</code></h1>
<p>${esc(order.product.name)} · <span class="price">${price(order.amount)}</span></p>
<p>Status: <strong id="order-status" data-status="${order.status}" data-status-url="/orders/${esc(order.id)}/status">${STATUS_TEXT[order.status]}</strong></p>
<p id="order-hint" role="status" hidden></p>
${pay}
<p><a href="/">Back to the products</a></p>`, scripts);
}

export function messagePage(title: string, message: string): string {
  return layout(title, `<h1>${esc(title)}</h1>\n<p>${esc(message)}</p>\n<p><a href="/">Back to the products</a></p>`);
}

export { STATUS_TEXT };
