/**
 * Stand-ins for the Official Account web OAuth that JSAPI payment needs (snsapi_base): the
 * authorize step redirects straight back with a code, as WeChat does for the silent scope, and
 * the access_token step trades the code (single use, 5 minutes) for the sandbox payer's openid.
 * Errors answer `{errcode, errmsg}` with HTTP 200, like api.weixin.qq.com.
 */
import crypto from 'node:crypto';
import express from 'express';
import type { SandboxDeps } from '../types.ts';
import { timingSafeEqualStr } from '../../crypto.ts';
import { findMerchantByAppid } from './store.ts';
import { hex, nowSeconds, sandboxOpenid } from './wire.ts';
import { renderResult } from './pages.ts';
import { GATEWAY_URL_RULE, isCashierUrl } from '../gateway-urls.ts';

const CODE_TTL_S = 300;
/** Codes already exchanged (single use), with their expiry; in memory, pruned as they expire. */
const usedCodes = new Map<string, number>();

/** A stateless code: expiry and randomness, bound to the appid by an HMAC under the master key. */
function issueCode(masterKey: Buffer, appid: string): string {
  const body = Buffer.alloc(12);
  body.writeUInt32BE(nowSeconds() + CODE_TTL_S, 0);
  crypto.randomBytes(8).copy(body, 4);
  return Buffer.concat([body, codeMac(masterKey, appid, body)]).toString('base64url');
}

const codeMac = (masterKey: Buffer, appid: string, body: Buffer) =>
  crypto.createHmac('sha256', masterKey).update(`wechatpay-sandbox-oauth-code\n${appid}\n`).update(body).digest().subarray(0, 12);

function redeemCode(masterKey: Buffer, appid: string, code: string): 'ok' | 'invalid' | 'used' {
  const raw = /^[A-Za-z0-9_-]{32}$/.test(code) ? Buffer.from(code, 'base64url') : Buffer.alloc(0);
  if (raw.length !== 24 || !crypto.timingSafeEqual(raw.subarray(12), codeMac(masterKey, appid, raw.subarray(0, 12)))) return 'invalid';
  const expires = raw.readUInt32BE(0);
  const now = nowSeconds();
  if (expires <= now) return 'invalid';
  for (const [c, exp] of usedCodes) if (exp <= now) usedCodes.delete(c);
  if (usedCodes.has(code)) return 'used';
  usedCodes.set(code, expires);
  return 'ok';
}

export function createOAuthRouter(deps: SandboxDeps): express.Router {
  const router = express.Router();

  // open.weixin.qq.com/connect/oauth2/authorize stand-in (the #wechat_redirect fragment never reaches a server).
  router.get('/connect/oauth2/authorize', async (req, res) => {
    const q = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const fail = (code: string, message: string) => renderResult(res, 400, 'error', { code, message });
    const merchant = await findMerchantByAppid(deps.db, deps.masterKey, q.get('appid') ?? '');
    // Only the Official Account (公众号) AppID has the web OAuth; a mobile-app AppID has none.
    if (!merchant || merchant.appid !== q.get('appid')) return fail('40013', 'appid 参数错误 · invalid appid');
    if (q.get('response_type') !== 'code') return fail('10003', 'response_type 参数错误 · response_type must be code');
    const scope = q.get('scope');
    if (scope !== 'snsapi_base' && scope !== 'snsapi_userinfo') return fail('10005', 'scope 参数错误 · scope must be snsapi_base or snsapi_userinfo');
    const state = q.get('state') ?? '';
    if (!/^[A-Za-z0-9]{0,128}$/.test(state)) return fail('10003', 'state 参数错误 · state is at most 128 letters or digits');
    // WeChat redirects only into the Official Account's registered 网页授权域名 (else 10003
    // "redirect_uri 域名与后台配置不一致"); the simulator's one registered page is the cashier's
    // OAuth landing. The code then reaches nobody else: it is single use and bound to the appid.
    const redirectUri = q.get('redirect_uri') ?? '';
    if (!isCashierUrl(deps.publicUrl, redirectUri, 'authorized')) {
      return fail('10003', `redirect_uri 域名与后台配置不一致 · redirect_uri ${GATEWAY_URL_RULE.authorized}`);
    }
    const target = new URL(redirectUri);
    target.searchParams.set('code', issueCode(deps.masterKey, merchant.appid));
    target.searchParams.set('state', state);
    res.redirect(302, target.toString());
  });

  // api.weixin.qq.com/sns/oauth2/access_token stand-in.
  router.get('/sns/oauth2/access_token', async (req, res) => {
    const q = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const error = (errcode: number, errmsg: string) => res.json({ errcode, errmsg: `${errmsg}, rid: ${hex(24)}` });
    const appid = q.get('appid');
    const secret = q.get('secret');
    const code = q.get('code');
    if (!appid) return error(41002, 'appid missing');
    if (!secret) return error(41004, 'appsecret missing');
    if (!code) return error(41008, 'missing code');
    if (q.get('grant_type') !== 'authorization_code') return error(40002, 'invalid grant_type');
    const merchant = await findMerchantByAppid(deps.db, deps.masterKey, appid);
    if (!merchant || merchant.appid !== appid) return error(40013, 'invalid appid');
    if (!timingSafeEqualStr(secret, merchant.appSecret)) return error(40125, 'invalid appsecret');
    const redeemed = redeemCode(deps.masterKey, appid, code);
    if (redeemed === 'used') return error(40163, 'code been used');
    if (redeemed !== 'ok') return error(40029, 'invalid code');
    res.set('Cache-Control', 'no-store').json({
      access_token: `sandbox_${hex(40)}`,
      expires_in: 7200,
      refresh_token: `sandbox_${hex(40)}`,
      openid: sandboxOpenid(deps.masterKey, appid),
      scope: 'snsapi_base',
    });
  });

  return router;
}
