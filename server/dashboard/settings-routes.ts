import { Router, type Response } from 'express';
import type { Deps } from '../deps.ts';
import { ChannelConfigError } from '../errors.ts';
import { parseOrigin } from '../apps/origins.ts';
import { setChannelConfig } from '../apps/channel-configs.ts';
import { channelFor, isProvider, sandboxFor } from '../channels/registry.ts';
import type { Provider } from '../channels/types.ts';
import { appRecord, channelConfigStatus, keyHints, updateAppOrigins } from './repo.ts';
import { BASE, one, renderPage, sessionOf } from './page.ts';

const PROVIDERS: Provider[] = ['alipay', 'wechatpay', 'unionpay', 'paypal', 'stripe'];
const NAMES: Record<Provider, string> = { alipay: 'Alipay', wechatpay: 'WeChat Pay', unionpay: 'UnionPay', paypal: 'PayPal', stripe: 'Stripe (cards, Apple Pay)' };
const MAX_ORIGINS = 20;
const MAX_CONFIG_CHARS = 60_000;

/** /console/keys (key hints, registered origins) and /console/channels (write-only credentials). */
export function createSettingsPages(deps: Deps): Router {
  const r = Router();

  async function showKeys(res: Response, extra: Record<string, unknown> = {}, status = 200) {
    const appId = sessionOf(res).appId;
    const [app, keys] = await Promise.all([appRecord(deps.db, appId), keyHints(deps.db, appId)]);
    renderPage(res, 'keys', { title: 'API keys and origins', app, keys, originsText: (app?.origins ?? []).join('\n'), ...extra }, status);
  }

  r.get('/keys', (req, res) => showKeys(res, { saved: one(req.query.saved) === '1' }));

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
