import type { RequestHandler, Response } from 'express';
import type { Deps } from '../deps.ts';
import { recordAudit } from '../audit/repo.ts';
import { appsOf } from './team.ts';
import { needed, roleHas, rolesWith, ruleFor, type Capability, type RouteRule } from './roles.ts';
import { renderPage, sessionOf } from './page.ts';

/**
 * The console's roles applied in one place (mounted in routes.ts after the session): the route
 * table of roles.ts decides what a request needs, a refusal is a 403 page naming the roles that
 * may do it, and every change that succeeds is written to the audit log when its answer is sent.
 */

const idPattern = /^[a-z]{2,4}_[A-Za-z0-9]{1,60}$/;
const OBJECT_TYPES: Record<string, string> = {
  pay: 'payment', re: 'refund', tr: 'transfer', agr: 'agreement', sub: 'subscription', we: 'webhook_endpoint', key: 'api_key',
  usr: 'console_user', inv: 'invitation', cus: 'customer', rp: 'red_packet', evt: 'event',
};

/** Capabilities a view asks about; `money` is the mode's (money_live or money_test). */
export type CanAsk = Capability | 'money';

interface Decided {
  rule: RouteRule;
  id?: string;
  livemode: boolean;
}

/** The `can(capability, livemode?)` helper views use to hide what the user's role cannot do. */
export function canFor(res: Response): (what: CanAsk, livemode?: boolean) => boolean {
  const s = sessionOf(res);
  return (what, livemode = s.livemode) => {
    // Test-mode customers are made-up people: everyone sees them (roles.ts: customer pages need it in live mode only).
    if (what === 'customer_details' && !livemode) return true;
    return roleHas(s.role, what === 'money' ? (livemode ? 'money_live' : 'money_test') : what);
  };
}

/** role, can, the app switcher's apps; and `hideCustomerDetails` for the console's current mode. */
export function teamLocals(deps: Deps): RequestHandler {
  return async (_req, res, next) => {
    const s = sessionOf(res);
    const can = canFor(res);
    res.locals.role = s.role;
    res.locals.can = can;
    res.locals.hideCustomerDetails = !can('customer_details');
    res.locals.apps = await appsOf(deps.db, s.userId);
    next();
  };
}

/** Refuses what the session's role may not do; remembers the rule for the audit. */
export function enforcePermissions(deps: Deps): RequestHandler {
  return async (req, res, next) => {
    const s = sessionOf(res);
    const { rule, id } = ruleFor(req.method, req.path);
    let livemode = s.livemode;
    if (rule.modeFrom === 'body') livemode = req.body?.mode === 'live';
    if (rule.modeFrom === 'payment' && id && idPattern.test(id)) {
      // The payment page serves either mode: what is allowed depends on the payment's own.
      const row = await deps.db('payments').where({ id, app_id: s.appId }).first('livemode');
      if (row) livemode = row.livemode === true || row.livemode === 1;
    }
    const need = needed(rule, livemode);
    if (!roleHas(s.role, need)) {
      const roles = rolesWith(need);
      const names = roles.length > 1 ? `${roles.slice(0, -1).join(', ')} or ${roles[roles.length - 1]}` : roles[0];
      deps.logger.info('console action refused by role', { user: s.userId, role: s.role, method: req.method, path: req.path, need });
      return renderPage(res, 'error', {
        title: 'Not allowed',
        message: `This needs the ${names} role${livemode && rule.live ? ' in live mode' : ''}; your role in this app is ${s.role}. Ask an owner of the app if you need it.`,
        neededRoles: roles,
      }, 403);
    }
    res.locals.decided = { rule, id, livemode } satisfies Decided;
    next();
  };
}

/**
 * Every console change that succeeded (a 2xx or 3xx answer to a non-GET), in the audit log once
 * the answer is sent. The action and the object come from the route table and the URL; the summary
 * holds the route's listed form fields only, plus what the route itself adds in
 * res.locals.auditDetails (the team pages do: a role's before and after).
 */
export function auditConsoleChanges(deps: Deps): RequestHandler {
  return (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    res.on('finish', () => {
      const decided = res.locals.decided as Decided | undefined;
      if (!decided || decided.rule.sessionOnly || res.statusCode < 200 || res.statusCode >= 400) return;
      const s = sessionOf(res);
      const { rule, id } = decided;
      const details = (res.locals.auditDetails ?? {}) as { summary?: Record<string, unknown>; object?: { type: string; id: string }; livemode?: boolean | null };
      const summary: Record<string, unknown> = {};
      for (const f of rule.fields ?? []) {
        const v = req.body?.[f];
        if (typeof v === 'string' ? v.trim() !== '' : Array.isArray(v)) summary[f] = typeof v === 'string' ? v.trim() : v;
      }
      Object.assign(summary, details.summary);
      const objectId = details.object?.id ?? (id && idPattern.test(id) ? id : undefined);
      const objectType = details.object?.type ?? (objectId ? OBJECT_TYPES[objectId.split('_')[0]!] ?? null : null);
      recordAudit(deps.db, {
        appId: s.appId,
        livemode: details.livemode !== undefined ? details.livemode : rule.path.startsWith('/team') ? null : decided.livemode,
        actor: { type: 'console_user', id: s.userId, email: s.email },
        action: rule.action ?? 'console.change',
        object: { type: objectType, id: objectId ?? null },
        summary,
        ip: req.ip ?? null,
      }).catch((err) => deps.logger.error('audit log write failed', { action: rule.action, err }));
    });
    next();
  };
}

/**
 * The customer a payment's page names, for its "Customer" line: name and email, or only the id
 * when the user's role may not see customers' details in the payment's mode (a developer, live).
 */
export function paymentCustomerLocals(deps: Deps): RequestHandler {
  return async (req, res, next) => {
    const m = /^\/payments\/([^/]+)\/?$/.exec(req.path);
    if (req.method !== 'GET' || !m || !idPattern.test(m[1]!)) return next();
    const s = sessionOf(res);
    const payment = await deps.db('payments').where({ id: m[1], app_id: s.appId }).first('customer_id', 'livemode');
    if (!payment) return next();
    const livemode = payment.livemode === true || payment.livemode === 1;
    const hidden = !canFor(res)('customer_details', livemode);
    res.locals.hideCustomerDetails = hidden;
    if (payment.customer_id) {
      const c = await deps.db('customers').where({ id: payment.customer_id, app_id: s.appId }).first('id', 'name', 'email', 'phone', 'out_user_id');
      if (c) res.locals.paymentCustomer = hidden ? { id: c.id, hidden: true } : { ...c, hidden: false };
    }
    next();
  };
}
