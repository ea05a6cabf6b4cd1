import { Router, type RequestHandler, type Response } from 'express';
import type { Deps } from '../deps.ts';
import type { Provider } from '../channels/types.ts';
import { channelFor, isProvider, sandboxFor } from '../channels/registry.ts';
import { ONBOARDING_PROVIDERS, checklistIds, onboardingGuide } from '../apps/onboarding.ts';
import { saveTickedItems, tickedItems } from '../apps/onboarding-repo.ts';
import { checkChannelCredentials, type CredentialCheckResult } from '../apps/credential-check.ts';
import { certificateAlerts, forgetCertificateAlerts } from '../apps/certificate-alerts.ts';
import { channelConfigStatus } from './repo.ts';
import { canFor } from './permissions.ts';
import { BASE, one, renderPage, sessionOf } from './page.ts';
import { tOf } from './i18n.ts';

/**
 * /console/channels/:provider: the channel's onboarding guide (what to prepare, where to apply,
 * this gateway's addresses to register), its checklist (ticks per app, mode and channel) and
 * "Check credentials" (apps/credential-check.ts). Roles: roles.ts's table (develop in test mode,
 * settings in live mode, as for the credentials themselves).
 */
export function createOnboardingPages(deps: Deps): Router {
  const r = Router();

  const providerOf = (v: string | undefined): Provider | undefined =>
    v && isProvider(v) && ONBOARDING_PROVIDERS.includes(v) && channelFor(v) ? v : undefined;
  const modeOf = (v: unknown) => (one(v) === 'live' ? true : one(v) === 'test' ? false : undefined);

  async function showGuide(res: Response, provider: Provider, livemode: boolean, extra: { check?: CredentialCheckResult; saved?: boolean; formError?: string } = {}, status = 200) {
    const appId = sessionOf(res).appId;
    const [ticks, configs] = await Promise.all([tickedItems(deps.db, appId, livemode, provider), channelConfigStatus(deps.db, appId)]);
    const config = configs.find((c) => c.provider === provider && c.livemode === livemode);
    const can = canFor(res);
    renderPage(res, 'channel-onboarding', {
      title: tOf(res)('{channel}: onboarding', { channel: channelFor(provider)!.displayName }),
      guide: onboardingGuide(provider, { publicUrl: deps.config.publicUrl, appId, lang: res.locals.lang === 'zh-CN' ? 'zh-CN' : 'en' }),
      mode: livemode ? 'live' : 'test',
      ticks: Object.fromEntries(ticks),
      config,
      simulator: !livemode && Boolean(sandboxFor(deps.config, provider)),
      canChange: can(livemode ? 'settings' : 'develop', livemode),
      ...extra,
    }, status);
  }

  r.get('/:provider', (req, res, next) => {
    const provider = providerOf(req.params.provider);
    if (!provider) return next();
    const livemode = modeOf(req.query.mode) ?? sessionOf(res).livemode;
    return showGuide(res, provider, livemode, { saved: one(req.query.saved) === '1' });
  });

  r.post('/:provider/checklist', async (req, res, next) => {
    const provider = providerOf(req.params.provider);
    if (!provider) return next();
    const livemode = modeOf(req.body?.mode);
    if (livemode === undefined) return showGuide(res, provider, sessionOf(res).livemode, { formError: tOf(res)('Choose test or live mode.') }, 400);
    const raw = req.body?.items;
    const given = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter((v): v is string => typeof v === 'string');
    const known = checklistIds(provider);
    const unknown = given.find((i) => !known.includes(i));
    if (unknown !== undefined) return showGuide(res, provider, livemode, { formError: tOf(res)('There is no checklist item "{item}" for this channel.', { item: unknown.slice(0, 40) }) }, 400);
    const change = await saveTickedItems(deps.db, { appId: sessionOf(res).appId, livemode, provider }, [...new Set(given)], sessionOf(res).userId);
    res.locals.auditDetails = { summary: { provider, ...change } };
    res.redirect(303, `${BASE}/channels/${provider}?mode=${livemode ? 'live' : 'test'}&saved=1`);
  });

  r.post('/:provider/check', async (req, res, next) => {
    const provider = providerOf(req.params.provider);
    if (!provider) return next();
    const livemode = modeOf(req.body?.mode);
    if (livemode === undefined) return showGuide(res, provider, sessionOf(res).livemode, { formError: tOf(res)('Choose test or live mode.') }, 400);
    const appId = sessionOf(res).appId;
    const check = await checkChannelCredentials(deps, appId, provider, livemode);
    // The check may have provisioned simulator keys, and it has just read the certificates: the banner follows.
    forgetCertificateAlerts(appId);
    deps.logger.info('console credential check', { app_id: appId, provider, mode: livemode ? 'live' : 'test', user: sessionOf(res).userId, ok: check.ok });
    res.locals.auditDetails = { summary: { provider, ok: check.ok, failed_step: check.steps.find((s) => s.status === 'failed')?.id ?? null } };
    return showGuide(res, provider, livemode, { check });
  });

  return r;
}

/** `certificateAlerts` for the layout's banner: the current app's expiring certificates (cached per minute). */
export function certificateAlertLocals(deps: Deps): RequestHandler {
  return async (_req, res, next) => {
    res.locals.certificateAlerts = await certificateAlerts(deps, sessionOf(res).appId);
    next();
  };
}
