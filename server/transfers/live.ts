/**
 * A live transfer must go to the channel's production API: live keys pointing at a simulator or a
 * channel's sandbox would "pay" nobody while the merchant believes the money left.
 */
import { ALIPAY_PRODUCTION_GATEWAY, type AlipayCredentials } from '../channels/alipay/index.ts';
import type { WechatpayCredentials } from '../channels/wechatpay/index.ts';

const WECHAT_PRODUCTION = new Set(['https://api.mch.weixin.qq.com', 'https://api2.mch.weixin.qq.com']);

const endpointOf = (channel: 'alipay' | 'wechatpay', cred: unknown): string =>
  channel === 'alipay' ? (cred as AlipayCredentials).gateway : (cred as WechatpayCredentials).baseUrl.replace(/\/$/, '');

export function isProductionCredential(channel: 'alipay' | 'wechatpay', cred: unknown): boolean {
  const at = endpointOf(channel, cred);
  return channel === 'alipay' ? at === ALIPAY_PRODUCTION_GATEWAY : WECHAT_PRODUCTION.has(at);
}

/** Where the config points, without path or query (never a secret). */
export function productionHint(channel: 'alipay' | 'wechatpay', cred: unknown): string {
  try {
    return `it points at ${new URL(endpointOf(channel, cred)).origin}`;
  } catch {
    return 'its endpoint is not a URL';
  }
}
