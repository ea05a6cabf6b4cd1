/**
 * Console roles and the one table of what each console route needs (issue 16). The table is
 * applied by one middleware (permissions.ts) in front of every console route, so no route file
 * carries its own check; a route missing from the table needs `settings` for a change (admin),
 * and only `read` for a GET, so a new page is never open wider than an admin's.
 */

export const ROLES = ['owner', 'admin', 'developer', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export const isRole = (v: unknown): v is Role => typeof v === 'string' && (ROLES as readonly string[]).includes(v);

/**
 * What a role may do. Not a ladder: a viewer (support, finance) reads customers' details, which a
 * developer does not see in live mode; a developer changes keys and endpoints, which a viewer does not.
 */
export type Capability =
  | 'read'
  /** Customers' names, emails, phones: customer pages and the payer on a payment, in live mode. */
  | 'customer_details'
  /** Refund, close, transfers, cancel or terminate recurring charges, in test mode. */
  | 'money_test'
  | 'money_live'
  /** API keys, origins, webhook endpoints, test-mode channel credentials, the test clock. */
  | 'develop'
  /** Live channel credentials, transfer limits, reconciliation actions, anything not listed. */
  | 'settings'
  /** Invite, change roles, remove members. */
  | 'team';

const CAPABILITIES: Record<Role, readonly Capability[]> = {
  owner: ['read', 'customer_details', 'money_test', 'money_live', 'develop', 'settings', 'team'],
  admin: ['read', 'customer_details', 'money_test', 'money_live', 'develop', 'settings'],
  developer: ['read', 'money_test', 'develop'],
  viewer: ['read', 'customer_details'],
};

export function roleHas(role: Role, capability: Capability): boolean {
  return CAPABILITIES[role].includes(capability);
}

/** The roles that have a capability, for the refusal page ("needs the owner or admin role"). */
export function rolesWith(capability: Capability): Role[] {
  return ROLES.filter((r) => roleHas(r, capability));
}

/** Where an action's mode comes from: the console's switch, the form's `mode`, or the payment the URL names. */
export type ModeSource = 'session' | 'body' | 'payment';

export interface RouteRule {
  method: 'GET' | 'POST';
  /** Relative to /console; `:id` matches one path segment. */
  path: string;
  /** Needed in test mode (and in live mode when `live` is not given). */
  test: Capability;
  live?: Capability;
  modeFrom?: ModeSource;
  /** The audit log's action name for a change. */
  action?: string;
  /** Form fields safe to copy into the audit summary (never passwords, secrets or credentials). */
  fields?: readonly string[];
  /** Changes only the user's own session (mode, app switch, logout): not audited. */
  sessionOnly?: boolean;
}

const MONEY = { test: 'money_test', live: 'money_live' } as const;

/** Every console route that changes something, and the reads that need more than `read`. */
export const ROUTE_RULES: readonly RouteRule[] = [
  { method: 'POST', path: '/mode', test: 'read', sessionOnly: true },
  { method: 'POST', path: '/app', test: 'read', sessionOnly: true },
  { method: 'POST', path: '/logout', test: 'read', sessionOnly: true },

  { method: 'GET', path: '/customers', test: 'read', live: 'customer_details' },
  { method: 'GET', path: '/customers/:id', test: 'read', live: 'customer_details' },

  { method: 'POST', path: '/payments/:id/refunds', ...MONEY, modeFrom: 'payment', action: 'payment.refund', fields: ['amount', 'reason'] },
  { method: 'POST', path: '/payments/:id/close', ...MONEY, modeFrom: 'payment', action: 'payment.close' },
  { method: 'POST', path: '/transfers', ...MONEY, action: 'transfer.create', fields: ['channel', 'amount', 'recipient_type', 'description'] },
  { method: 'POST', path: '/transfers/settings', test: 'settings', action: 'transfer.limits.update', fields: ['single_limit', 'daily_limit', 'approval_threshold'] },
  { method: 'POST', path: '/transfers/:id/approve', ...MONEY, action: 'transfer.approve' },
  { method: 'POST', path: '/transfers/:id/reject', ...MONEY, action: 'transfer.reject' },
  { method: 'POST', path: '/transfers/:id/cancel', ...MONEY, action: 'transfer.cancel' },
  { method: 'POST', path: '/agreements/:id/terminate', ...MONEY, action: 'agreement.terminate' },
  { method: 'POST', path: '/subscriptions/:id/cancel', ...MONEY, action: 'subscription.cancel', fields: ['when'] },
  { method: 'POST', path: '/subscriptions/:id/advance', test: 'develop', action: 'subscription.test_clock.advance', fields: ['to'] },

  { method: 'POST', path: '/keys/create', test: 'develop', action: 'api_key.create', fields: ['mode'] },
  { method: 'POST', path: '/keys/:id/roll', test: 'develop', action: 'api_key.roll', fields: ['mode', 'expires_in'] },
  { method: 'POST', path: '/keys/:id/revoke', test: 'develop', action: 'api_key.revoke', fields: ['mode'] },
  { method: 'POST', path: '/keys/origins', test: 'develop', action: 'app.origins.update', fields: ['origins'] },
  { method: 'POST', path: '/channels', test: 'develop', live: 'settings', modeFrom: 'body', action: 'channel_config.update', fields: ['provider', 'mode'] },
  { method: 'POST', path: '/channels/:id/checklist', test: 'develop', live: 'settings', modeFrom: 'body', action: 'channel_onboarding.checklist', fields: ['mode'] },
  { method: 'POST', path: '/channels/:id/check', test: 'develop', live: 'settings', modeFrom: 'body', action: 'channel_config.check', fields: ['mode'] },

  { method: 'POST', path: '/webhooks', test: 'develop', action: 'webhook_endpoint.create', fields: ['url', 'events'] },
  { method: 'POST', path: '/webhooks/:id/test', test: 'develop', action: 'webhook_endpoint.test' },
  { method: 'POST', path: '/webhooks/:id/status', test: 'develop', action: 'webhook_endpoint.status', fields: ['status'] },
  { method: 'POST', path: '/webhooks/:id/rotate', test: 'develop', action: 'webhook_endpoint.rotate_secret', fields: ['expires_in'] },
  { method: 'POST', path: '/webhooks/:id/resend', test: 'develop', action: 'webhook_endpoint.resend', fields: ['event'] },
  { method: 'POST', path: '/webhooks/:id/delete', test: 'develop', action: 'webhook_endpoint.delete' },

  { method: 'POST', path: '/team/invitations', test: 'team', action: 'team.invite' },
  { method: 'POST', path: '/team/invitations/:id/revoke', test: 'team', action: 'team.invitation.revoke' },
  { method: 'POST', path: '/team/members/:id/role', test: 'team', action: 'team.role.change' },
  { method: 'POST', path: '/team/members/:id/remove', test: 'team', action: 'team.member.remove' },
];

const compiled = ROUTE_RULES.map((rule) => ({
  rule,
  re: new RegExp(`^${rule.path.replace(/:id/g, '([^/]+)')}/?$`),
}));

/** The rule for a request to the console (path relative to /console), with the `:id` it named. */
export function ruleFor(method: string, path: string): { rule: RouteRule; id?: string } {
  const m = method === 'HEAD' ? 'GET' : method;
  for (const { rule, re } of compiled) {
    if (rule.method !== m) continue;
    const hit = re.exec(path);
    if (hit) return { rule, id: hit[1] };
  }
  if (m === 'GET') return { rule: { method: 'GET', path, test: 'read' } };
  // Not in the table: an admin's change, named after its path (/reconciliation/check → reconciliation.check).
  const parts = path.split('/').filter(Boolean);
  const id = parts.find((p) => /^[a-z]{2,4}_[A-Za-z0-9]+$/.test(p));
  const action = parts.filter((p) => p !== id).join('.').replace(/[^a-z0-9_.]/gi, '_').slice(0, 64) || 'console.change';
  return { rule: { method: 'POST', path, test: 'settings', action }, id };
}

/** The capability a rule needs in a mode. */
export function needed(rule: RouteRule, livemode: boolean): Capability {
  return livemode ? (rule.live ?? rule.test) : rule.test;
}
