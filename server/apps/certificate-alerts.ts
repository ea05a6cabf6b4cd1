/**
 * The console's certificate banner (issue 16): every certificate in an app's stored channel
 * configs (both modes) that has expired or expires within 30 days. Unsealing and reading
 * certificates is not free, and the banner is on every page: one computation per app per minute
 * per process, shared by the requests that ask meanwhile.
 */
import type { Deps } from '../deps.ts';
import { channelFor } from '../channels/registry.ts';
import type { Provider } from '../channels/types.ts';
import { configsChangedAt, readStoredConfigs } from './channel-configs.ts';
import { certificatesOf } from './credential-check.ts';

export interface CertificateAlert {
  provider: Provider;
  channelName: string;
  livemode: boolean;
  field: string;
  /** Unix seconds. */
  notAfter: number;
  expired: boolean;
}

const TTL_MS = 60_000;
const MAX_APPS = 5_000;
const cache = new Map<string, { at: number; alerts: Promise<CertificateAlert[]> }>();

/** The app's expiring and expired certificates, soonest first; cached for a minute. */
export function certificateAlerts(deps: Pick<Deps, 'db' | 'config' | 'logger'>, appId: string): Promise<CertificateAlert[]> {
  const hit = cache.get(appId);
  // An upload in this process shows at once; one in another process within the minute.
  if (hit && Date.now() - hit.at < TTL_MS && hit.at > configsChangedAt()) return hit.alerts;
  if (cache.size >= MAX_APPS) cache.clear();
  const alerts = computeAlerts(deps, appId).catch((err) => {
    // A config that cannot be read is the credential check's to report, not a reason to break every page.
    deps.logger.error('certificate expiry check failed', { app_id: appId, err });
    return [];
  });
  cache.set(appId, { at: Date.now(), alerts });
  return alerts;
}

/** Forgets an app's cached alerts (after its credentials change in this process). */
export function forgetCertificateAlerts(appId: string): void {
  cache.delete(appId);
}

async function computeAlerts(deps: Pick<Deps, 'db' | 'config'>, appId: string): Promise<CertificateAlert[]> {
  const now = Math.floor(Date.now() / 1000);
  const out: CertificateAlert[] = [];
  for (const stored of await readStoredConfigs(deps, appId)) {
    for (const c of certificatesOf(stored.provider, stored.raw, now).list) {
      if (c.state !== 'expiring' && c.state !== 'expired') continue;
      out.push({ provider: stored.provider, channelName: channelFor(stored.provider)?.displayName ?? stored.provider, livemode: stored.livemode, field: c.field, notAfter: c.notAfter, expired: c.state === 'expired' });
    }
  }
  return out.sort((a, b) => a.notAfter - b.notAfter);
}
