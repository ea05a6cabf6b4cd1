/**
 * The only addresses the simulators send a browser or a notify to: this gateway's own, on
 * PUBLIC_URL. A real channel sends payers back only to the domains the merchant registered with
 * it (Alipay's 授权回调地址, WeChat's H5 / JSAPI / 网页授权 domains), and the gateway is the only
 * merchant a simulator serves; taking any URL from the request would make /sandbox, which is
 * mounted in live deployments too, an open redirect on the gateway's origin and a way to make the
 * gateway POST to any address (SSRF).
 */
import type { Provider } from '../channels/types.ts';

/**
 * Which of the gateway's pages a URL may be:
 * - back: the cashier page or its return page (`/pay/:token`, `/pay/:token/return`): return_url,
 *   quit_url, WeChat H5's redirect_url and the JSAPI stand-in's return;
 * - authorized: the cashier's OAuth landing (`/pay/:token/authorized`): WeChat's redirect_uri.
 */
export type CashierLanding = 'back' | 'authorized';

const LANDINGS: Record<CashierLanding, RegExp> = {
  back: /^\/pay\/[A-Za-z0-9]+(\/return)?$/,
  authorized: /^\/pay\/[A-Za-z0-9]+\/authorized$/,
};

/** The path of `url` below PUBLIC_URL when it is on the gateway's origin, plainly written; else undefined. */
function gatewayPath(publicUrl: string, url: string): { path: string; search: string; hash: string } | undefined {
  if (!URL.canParse(url)) return undefined;
  const u = new URL(url);
  const base = new URL(publicUrl);
  if (u.origin !== base.origin || u.username || u.password) return undefined;
  // PUBLIC_URL may carry a path prefix (a gateway behind a path-routing proxy).
  const prefix = base.pathname.replace(/\/+$/, '');
  if (prefix && !u.pathname.startsWith(`${prefix}/`)) return undefined;
  return { path: u.pathname.slice(prefix.length), search: u.search, hash: u.hash };
}

/** True when `url` is one of the cashier's pages of that kind on PUBLIC_URL (any query: lang, embed, channel). */
export function isCashierUrl(publicUrl: string, url: string, landing: CashierLanding): boolean {
  const p = gatewayPath(publicUrl, url);
  return Boolean(p && !p.hash && LANDINGS[landing].test(p.path));
}

/** True when `url` is the gateway's notify endpoint of that channel (`/notify/:provider/:app`), without query. */
export function isNotifyUrl(publicUrl: string, url: string, provider: Provider): boolean {
  const p = gatewayPath(publicUrl, url);
  return Boolean(p && !p.search && !p.hash && new RegExp(`^/notify/${provider}/[A-Za-z0-9_]+$`).test(p.path));
}

/** What the simulators' refusals say, so a merchant reading one knows what is allowed. */
export const GATEWAY_URL_RULE = {
  back: "must be this gateway's cashier page (PUBLIC_URL/pay/…)",
  authorized: "must be this gateway's cashier OAuth page (PUBLIC_URL/pay/…/authorized)",
  notify: (provider: Provider) => `must be this gateway's notify URL (PUBLIC_URL/notify/${provider}/…)`,
};
