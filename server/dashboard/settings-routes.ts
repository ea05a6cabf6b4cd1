import { Router, type Response } from 'express';
import type { Deps } from '../deps.ts';
import { ChannelConfigError } from '../errors.ts';
import { parseOrigin } from '../apps/origins.ts';
import { setChannelConfig } from '../apps/channel-configs.ts';
import { channelFor, isProvider, sandboxFor } from '../channels/registry.ts';
import type { Provider } from '../channels/types.ts';
import { appRecord, channelConfigStatus, updateAppOrigins } from './repo.ts';
import { listApiKeys, toApiKeyObject } from '../api-keys/repo.ts';
import { createKey, revokeKey, rollKey, MAX_ROLL_OVERLAP_S } from '../api-keys/service.ts';
import { ApiError } from '../errors.ts';
import { nowSeconds } from '../crypto.ts';
import { BASE, one, renderPage, sessionOf } from './page.ts';

const PROVIDERS: Provider[] = ['alipay', 'wechatpay', 'unionpay', 'paypal', 'stripe'];
const NAMES: Record<Provider, string> = { alipay: 'Alipay', wechatpay: 'WeChat Pay', unionpay: 'UnionPay', paypal: 'PayPal', stripe: 'Stripe (cards, Apple Pay)' };
const MAX_ORIGINS = 20;
/** How long a rolled key may keep working, as the console offers it. */
const ROLL_OVERLAPS = [
  { seconds: 0, label: 'stop it now' }, { seconds: 3600, label: '1 hour' }, { seconds: 86_400, label: '24 hours' },
  { seconds: 3 * 86_400, label: '3 days' }, { seconds: MAX_ROLL_OVERLAP_S, label: '7 days' },
];
const MAX_CONFIG_CHARS = 60_000;

/** /console/keys (key hints, registered origins) and /console/channels (write-only credentials). */
export function createSettingsPages(deps: Deps): Router {
  const r = Router();

  async function showKeys(res: Response, extra: Record<string, unknown> = {}, status = 200) {
    const appId = sessionOf(res).appId;
    const [app, rows] = await Promise.all([appRecord(deps.db, appId), listApiKeys(deps.db, appId)]);
    const now = nowSeconds();
    // Expired and revoked keys stay listed for a week, then only the working ones.
    const keys = rows.map((k) => toApiKeyObject(k, now)).filter((k) => k.status === 'active' || k.status === 'expiring'
      || (k.revoked_at ?? k.expires_at ?? 0) > now - 7 * 86_400);
    renderPage(res, 'keys', { title: 'API keys and origins', app, keys, overlaps: ROLL_OVERLAPS, originsText: (app?.origins ?? []).join('\n'), ...extra }, status);
  }

  r.get('/keys', (req, res) => showKeys(res, { saved: one(req.query.saved) === '1', revoked: one(req.query.revoked) === '1' }));

  /** A key action's answer: the page itself (never a redirect carrying the secret), or the error beside the keys. */
  async function keyAction(res: Response, act: () => Promise<Record<string, unknown>>) {
    try {
      const shown = await act();
      res.set('Cache-Control', 'no-store');
      return showKeys(res, shown);
    } catch (err) {
      if (err instanceof ApiError && err.status < 500) return showKeys(res, { keyError: err.message }, err.status);
      throw err;
    }
  }
  const modeOf = (v: unknown) => (one(v) === 'live' ? true : one(v) === 'test' ? false : undefined);

  r.post('/keys/create', (req, res) => keyAction(res, async () => {
    const livemode = modeOf(req.body?.mode);
    if (livemode === undefined) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'Choose the mode of the new key: test or live.', 'mode');
    const key = await createKey(deps.db, { appId: sessionOf(res).appId, livemode });
    deps.logger.info('console api key created', { app_id: sessionOf(res).appId, user: sessionOf(res).userId, key: key.id });
    return { newKey: key };
  }));

  r.post('/keys/:id/roll', (req, res) => keyAction(res, async () => {
    const livemode = modeOf(req.body?.mode);
    const expiresIn = Number(one(req.body?.expires_in));
    if (livemode === undefined) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'Unknown key mode.', 'mode');
    if (!ROLL_OVERLAPS.some((o) => o.seconds === expiresIn)) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'Choose how long the old key keeps working.', 'expires_in');
    const { rolled, key } = await rollKey(deps.db, { appId: sessionOf(res).appId, livemode }, req.params.id, { expires_in: expiresIn });
    deps.logger.info('console api key rolled', { app_id: sessionOf(res).appId, user: sessionOf(res).userId, key: rolled.id, successor: key.id });
    return { newKey: key, rolled };
  }));

  r.post('/keys/:id/revoke', (req, res) => keyAction(res, async () => {
    const livemode = modeOf(req.body?.mode);
    if (livemode === undefined) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', 'Unknown key mode.', 'mode');
    if (one(req.body?.confirm) !== 'yes') throw new ApiError(400, 'invalid_request_error', 'parameter_missing', 'Tick the box to confirm the revocation: requests with this key will be refused at once.', 'confirm');
    const k = await revokeKey(deps.db, { appId: sessionOf(res).appId, livemode }, req.params.id);
    deps.logger.info('console api key revoked', { app_id: sessionOf(res).appId, user: sessionOf(res).userId, key: k.id });
    return { revokedKey: k };
  }));

  r.post('/keys/origins', async (req, res) => {
    const text = one(req.body?.origins) ?? '';
    const origins: string[] = [];
    for (const [i, raw] of text.split(/\r?\n/).entries()) {
      if (!raw.trim()) continue;
      const parsed = parseOrigin(raw);
      if (!parsed.ok) return showKeys(res, { originsError: `Line ${i + 1}: "${raw.trim().slice(0, 100)}" is not an origin: ${parsed.reason}.`, originsText: text }, 400);
      if (!origins.includes(parsed.origin)) origins.push(parsed.origin);
    }
    if (origins.length > MAX_ORIGINS) return showKeys(res, { originsError: `At most ${MAX_ORIGINS} origins.`, originsText: text }, 400);
    await updateAppOrigins(deps.db, sessionOf(res).appId, origins);
    deps.logger.info('console origins updated', { app_id: sessionOf(res).appId, user: sessionOf(res).userId });
    res.redirect(303, `${BASE}/keys?saved=1`);
  });

  async function showChannels(res: Response, extra: Record<string, unknown> = {}, status = 200) {
    const configs = await channelConfigStatus(deps.db, sessionOf(res).appId);
    const providers = PROVIDERS.map((p) => ({
      provider: p,
      name: channelFor(p)?.displayName ?? NAMES[p],
      available: Boolean(channelFor(p)),
      simulator: Boolean(sandboxFor(deps.config, p)),
      test: configs.find((c) => c.provider === p && !c.livemode),
      live: configs.find((c) => c.provider === p && c.livemode),
    }));
    renderPage(res, 'channels', { title: 'Channel credentials', providers, form: { provider: '', mode: sessionOf(res).livemode ? 'live' : 'test' }, ...extra }, status);
  }

  r.get('/channels', (req, res) => {
    const saved = one(req.query.saved);
    return showChannels(res, { saved: saved && /^[a-z]+-(test|live)$/.test(saved) ? saved : undefined });
  });

  r.post('/channels', async (req, res) => {
    const provider = one(req.body?.provider) ?? '';
    const mode = one(req.body?.mode) ?? '';
    const text = one(req.body?.config) ?? '';
    // The pasted config is never echoed back, not even into the form after an error.
    const form = { provider, mode };
    const fail = (message: string) => showChannels(res, { formError: message, form }, 400);
    if (!isProvider(provider) || !channelFor(provider)) return fail('Choose a channel this gateway supports.');
    if (mode !== 'test' && mode !== 'live') return fail('Choose test or live mode.');
    if (text.length > MAX_CONFIG_CHARS) return fail('The configuration is too large.');
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      // JSON.parse's message quotes the input, which may be a private key.
      return fail('The configuration is not valid JSON.');
    }
    try {
      await setChannelConfig(deps, sessionOf(res).appId, provider, mode === 'live', raw);
    } catch (err) {
      if (err instanceof ChannelConfigError) return fail(err.message);
      throw err;
    }
    deps.logger.info('console channel credentials stored', { app_id: sessionOf(res).appId, provider, mode, user: sessionOf(res).userId });
    res.redirect(303, `${BASE}/channels?saved=${provider}-${mode}`);
  });

  return r;
}
