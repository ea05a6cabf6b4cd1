/**
 * The snsapi_base OAuth of an Official Account, which JSAPI payment needs for the payer's openid:
 * the browser goes to open.weixin.qq.com/connect/oauth2/authorize and comes back with a code,
 * which the server exchanges at api.weixin.qq.com/sns/oauth2/access_token.
 * Source: developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
 */
import { ChannelConfigError, ChannelRequestError, ChannelUnavailable } from '../../errors.ts';
import type { WechatpayCredentials } from './index.ts';

const REQUEST_TIMEOUT_MS = 10_000;

/**
 * The authorize URL for snsapi_base (silent: no consent page). WeChat wants the parameters in
 * exactly this order and the `#wechat_redirect` fragment; `state` is at most 128 bytes of
 * [A-Za-z0-9]. In test mode the base is the simulator's, derived from base_url.
 */
export function oauthAuthorizeUrl(cred: WechatpayCredentials, redirectUri: string, state: string): string {
  if (!/^[A-Za-z0-9]{0,128}$/.test(state)) throw new ChannelRequestError('oauth_state_invalid', 'WeChat OAuth state must be at most 128 letters or digits');
  let target: URL;
  try {
    target = new URL(redirectUri);
  } catch {
    throw new ChannelRequestError('oauth_redirect_invalid', 'WeChat OAuth redirect_uri must be an absolute http(s) URL');
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') throw new ChannelRequestError('oauth_redirect_invalid', 'WeChat OAuth redirect_uri must be an absolute http(s) URL');
  return `${cred.oauthBaseUrl}/connect/oauth2/authorize?appid=${encodeURIComponent(cred.appid)}`
    + `&redirect_uri=${encodeURIComponent(redirectUri)}&response_type=code&scope=snsapi_base&state=${state}#wechat_redirect`;
}

/** errcodes that mean the app's configuration is wrong (appid, secret, IP allow-list). */
const CONFIG_ERRCODES = new Set([40013, 40125, 40164, 41002, 41004, 40001, 48001]);

/**
 * Exchanges the code from the OAuth redirect for the payer's openid (needs app_secret). The code
 * is single-use and lives 5 minutes. Errors come as `{errcode, errmsg}` with HTTP 200.
 */
export async function exchangeOAuthCode(cred: WechatpayCredentials, code: string): Promise<string> {
  if (!cred.appSecret) throw new ChannelConfigError('WeChat Pay config: app_secret is required for the JSAPI OAuth (snsapi_base)');
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(code)) throw new ChannelRequestError('oauth_code_invalid', 'WeChat OAuth code is malformed');
  const url = `${cred.apiBaseUrl}/sns/oauth2/access_token?appid=${encodeURIComponent(cred.appid)}&secret=${encodeURIComponent(cred.appSecret.reveal())}`
    + `&code=${encodeURIComponent(code)}&grant_type=authorization_code`;
  let body: Record<string, unknown>;
  try {
    const res = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const text = await res.text();
    if (res.status !== 200) throw new ChannelUnavailable(`WeChat OAuth access_token: answered HTTP ${res.status}`);
    body = JSON.parse(text) as Record<string, unknown>;
    if (!body || typeof body !== 'object') throw new SyntaxError('not an object');
  } catch (err) {
    // Never pass the fetch error on: its message may quote the URL, which holds the secret.
    if (err instanceof ChannelUnavailable) throw err;
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    throw new ChannelUnavailable(`WeChat OAuth access_token: ${timedOut ? `no answer within ${REQUEST_TIMEOUT_MS / 1000}s` : err instanceof SyntaxError ? 'unreadable answer' : 'unreachable'}`);
  }
  const errcode = typeof body.errcode === 'number' ? body.errcode : 0;
  if (errcode !== 0) {
    const detail = `WeChat OAuth access_token: errcode ${errcode}: ${String(body.errmsg ?? '').slice(0, 200)}`;
    if (errcode === -1 || errcode === 45009) throw new ChannelUnavailable(detail); // system busy, rate limit
    if (CONFIG_ERRCODES.has(errcode)) throw new ChannelConfigError(detail);
    throw new ChannelRequestError(String(errcode), detail); // 40029 invalid code, 40163 code used…
  }
  if (typeof body.openid !== 'string' || !/^[A-Za-z0-9_-]{6,64}$/.test(body.openid)) throw new ChannelUnavailable('WeChat OAuth access_token: answered without an openid');
  return body.openid;
}
