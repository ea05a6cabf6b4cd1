import { Router, type Request, type Response } from 'express';
import type { Deps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { toApiError } from '../http/errors.ts';
import { paginate } from '../http/pagination.ts';
import { AGREEMENT_CHANNELS, AGREEMENT_STATUSES, agreementFromRow, findAgreement, type AgreementRow } from '../agreements/repo.ts';
import { terminateAgreement } from '../agreements/service.ts';
import { SUBSCRIPTION_STATUSES, findSubscription, subscriptionFromRow, type SubscriptionRow } from '../subscriptions/repo.ts';
import { cancelSubscription, clockOf } from '../subscriptions/service.ts';
import { advanceSubscription } from '../subscriptions/test-clock.ts';
import { paymentFromRow } from '../payments/repo.ts';
import { agreementsQuery, chargesQuery, objectEvents, pendingPeriod, subscriptionsOfAgreement, subscriptionsQuery } from './recurring-repo.ts';
import { parseBeijingDateTime } from './format.ts';
import { BASE, one, renderPage, scopeOf, sessionOf } from './page.ts';
import { tOf } from './i18n.ts';
import { cursorOf, pager } from './payments-routes.ts';

const PAGE_SIZE = 25;
const agreementIdPattern = /^agr_[A-Za-z0-9]{1,60}$/;
const subscriptionIdPattern = /^sub_[A-Za-z0-9]{1,60}$/;
const pick = (value: string | undefined, allowed: readonly string[]) => (value && allowed.includes(value) ? value : undefined);

/**
 * A console action on one object: the domain service the API's route calls, then 303 back to the
 * object's page; a refusal (a channel's answer, a bad form value) is shown on that page.
 */
function consoleAction<T>(
  deps: Deps,
  what: string,
  load: (req: Request, res: Response) => Promise<T & { id: string }>,
  show: (req: Request, res: Response, extra: Record<string, unknown>, status: number) => Promise<void>,
  path: string,
) {
  return (name: string, run: (o: T & { id: string }, req: Request, res: Response) => Promise<unknown>) => async (req: Request, res: Response) => {
    const o = await load(req, res);
    try {
      await run(o, req, res);
      deps.logger.info(`console ${what} ${name}`, { [`${what}_id`]: o.id, user: sessionOf(res).userId });
      res.redirect(303, `${BASE}/${path}/${o.id}?done=${name}`);
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.status >= 500) throw err;
      await show(req, res, { actionError: apiErr.message }, apiErr.status === 404 ? 404 : 400);
    }
  };
}

/**
 * /console/agreements: the app's mandates (Alipay 周期扣款) in the current mode, and each one's
 * page with its subscriptions, where it can be terminated as POST /v1/agreements/:id/terminate does.
 */
export function createAgreementPages(deps: Deps): Router {
  const r = Router();

  r.get('/', async (req, res) => {
    const scope = scopeOf(res);
    const filters = { status: pick(one(req.query.status), AGREEMENT_STATUSES), channel: pick(one(req.query.channel), AGREEMENT_CHANNELS) };
    const cursor = cursorOf(req);
    const page = await paginate(() => agreementsQuery(deps.db, scope, filters), { limit: PAGE_SIZE, ...cursor, url: '' }, agreementFromRow);
    renderPage(res, 'agreements', {
      title: 'Agreements',
      agreements: page.data,
      filters,
      statuses: AGREEMENT_STATUSES,
      channels: AGREEMENT_CHANNELS,
      pager: pager(page.data, page.has_more, cursor),
    });
  });

  async function agreementOr404(req: Request, res: Response): Promise<AgreementRow> {
    const id = String(req.params.id);
    const a = agreementIdPattern.test(id) ? await findAgreement(deps.db, scopeOf(res), id) : undefined;
    if (!a) throw new ApiError(404, 'invalid_request_error', 'resource_missing', `No such agreement: '${id}'`);
    return a;
  }

  async function showAgreement(req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200) {
    const a = await agreementOr404(req, res);
    const [subscriptions, events] = await Promise.all([subscriptionsOfAgreement(deps.db, a), objectEvents(deps.db, a.app_id, a.id)]);
    renderPage(res, 'agreement', {
      title: tOf(res)('Agreement {id}', { id: a.id }),
      agreement: a,
      subscriptions,
      events,
      // No column holds these: the events that moved the mandate do.
      signedAt: events.find((e) => e.type === 'agreement.active')?.created,
      terminatedAt: events.find((e) => e.type === 'agreement.terminated')?.created,
      done: one(req.query.done),
      ...extra,
    }, status);
  }

  r.get('/:id', (req, res) => showAgreement(req, res));

  const action = consoleAction<AgreementRow>(deps, 'agreement', agreementOr404, showAgreement, 'agreements');
  // An active mandate is unsigned at the channel first; a terminated one is left as it is.
  r.post('/:id/terminate', action('terminate', (a, _req, res) => terminateAgreement(deps, scopeOf(res), a.id)));

  return r;
}

/**
 * /console/subscriptions: the app's subscriptions in the current mode, and each one's page with
 * its charges (the payments of its periods), cancel now or at the period's end as POST
 * /v1/subscriptions/:id/cancel does, and in test mode its test clock.
 */
export function createSubscriptionPages(deps: Deps): Router {
  const r = Router();

  r.get('/', async (req, res) => {
    const scope = scopeOf(res);
    const filters = { status: pick(one(req.query.status), SUBSCRIPTION_STATUSES) };
    const cursor = cursorOf(req);
    const page = await paginate(() => subscriptionsQuery(deps.db, scope, filters), { limit: PAGE_SIZE, ...cursor, url: '' }, subscriptionFromRow);
    renderPage(res, 'subscriptions', {
      title: 'Subscriptions',
      subscriptions: page.data,
      filters,
      statuses: SUBSCRIPTION_STATUSES,
      pager: pager(page.data, page.has_more, cursor),
    });
  });

  async function subscriptionOr404(req: Request, res: Response): Promise<SubscriptionRow> {
    const id = String(req.params.id);
    const s = subscriptionIdPattern.test(id) ? await findSubscription(deps.db, scopeOf(res), id) : undefined;
    if (!s) throw new ApiError(404, 'invalid_request_error', 'resource_missing', `No such subscription: '${id}'`);
    return s;
  }

  async function showSubscription(req: Request, res: Response, extra: Record<string, unknown> = {}, status = 200) {
    const s = await subscriptionOr404(req, res);
    const cursor = cursorOf(req);
    const [charges, next, events] = await Promise.all([
      paginate(() => chargesQuery(deps.db, s), { limit: PAGE_SIZE, ...cursor, url: '' }, paymentFromRow),
      pendingPeriod(deps.db, s.id),
      objectEvents(deps.db, s.app_id, s.id, 100),
    ]);
    const clock = Math.floor(clockOf(s) / 1000);
    renderPage(res, 'subscription', {
      title: tOf(res)('Subscription {subject}', { subject: s.subject }),
      subscription: s,
      charges: charges.data,
      pager: pager(charges.data, charges.has_more, cursor),
      next,
      events,
      clock,
      // The test clock form starts at noon of the next charge's date: far enough for its first try.
      advanceTo: next && next.period_start + 12 * 3600 > clock ? next.period_start + 12 * 3600 : clock + 86_400,
      done: one(req.query.done),
      ...extra,
    }, status);
  }

  r.get('/:id', (req, res) => showSubscription(req, res));

  const action = consoleAction<SubscriptionRow>(deps, 'subscription', subscriptionOr404, showSubscription, 'subscriptions');

  r.post('/:id/cancel', action('cancel', async (s, req, res) => {
    const when = one(req.body?.when);
    if (when !== 'now' && when !== 'period_end') throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', tOf(res)('Choose to cancel now or at the end of the current period.'), 'when');
    await cancelSubscription(deps, scopeOf(res), s.id, { at_period_end: when === 'period_end' });
  }));

  const advance = action('advance', async (s, req, res) => {
    const to = parseBeijingDateTime(one(req.body?.to) ?? '');
    if (to === undefined) throw new ApiError(400, 'invalid_request_error', 'parameter_invalid', tOf(res)("Enter the test clock's new time as a Beijing date and time, such as 2025-03-01T10:00."), 'to');
    await advanceSubscription(deps, scopeOf(res), s.id, { to });
  });
  // Test mode only, as POST /v1/test_helpers/subscriptions/:id/advance: in live mode there is no such page.
  r.post('/:id/advance', (req, res, next) => (scopeOf(res).livemode ? next() : advance(req, res)));

  return r;
}
