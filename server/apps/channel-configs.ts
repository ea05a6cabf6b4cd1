import type { Knex } from 'knex';
import { seal, unseal, nowSeconds } from '../crypto.ts';
import { ChannelConfigError } from '../errors.ts';
import { SANDBOX_OFF, channelFor, hasSimulator, sandboxFor } from '../channels/registry.ts';
import type { Provider } from '../channels/types.ts';
import type { Deps } from '../deps.ts';

const aad = (appId: string, provider: Provider, livemode: boolean) => `channel:${appId}:${provider}:${livemode ? 'live' : 'test'}`;

/** Validates and stores a channel config, sealed under the master key. Never returned afterwards. */
export async function setChannelConfig(
  deps: Pick<Deps, 'db' | 'config'>,
  appId: string,
  provider: Provider,
  livemode: boolean,
  raw: unknown,
): Promise<void> {
  const channel = channelFor(provider);
  if (!channel) throw new ChannelConfigError(`channel ${provider} is not available in this build`);
  // Checked here, on upload only: the adapters' schemas ignore unknown keys, so a misspelt optional
  // field (seller_id, which notifies are checked against) would be dropped without a word.
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    const unknown = Object.keys(raw).find((k) => !channel.credentialKeys.includes(k));
    if (unknown !== undefined) {
      throw new ChannelConfigError(`${channel.displayName} config: unknown key ${JSON.stringify(unknown.slice(0, 40))}; the keys are ${channel.credentialKeys.join(', ')}`);
    }
  }
  channel.parseCredentials(raw);
  const now = nowSeconds();
  const sealed = seal(deps.config.masterKeyBytes, JSON.stringify(raw), aad(appId, provider, livemode));
  await deps.db('channel_configs')
    .insert({ app_id: appId, provider, livemode, config_sealed: sealed, generated: false, created: now, updated: now })
    .onConflict(['app_id', 'provider', 'livemode'])
    .merge({ config_sealed: sealed, generated: false, updated: now });
  cache.clear();
  modesCache.clear();
  lastChangeMs = Date.now();
}

let lastChangeMs = 0;
/** When this process last stored a config (ms): caches derived from stored configs start again after it. */
export const configsChangedAt = (): number => lastChangeMs;

const cache = new Map<string, { cred: unknown; at: number }>();
/** The modes an app has a config for, per provider: every notify asks. */
const modesCache = new Map<string, { modes: boolean[]; at: number }>();
const CACHE_MS = 30_000;
/** Cold loads in progress, per database: callers that miss the cache together share one. */
const loading = new WeakMap<Knex, Map<string, Promise<unknown>>>();

/**
 * The parsed credentials of an app for a channel. In test mode an app without its own config
 * gets one provisioned at the simulator on first use (keys generated, stored sealed): once per
 * process however many payments ask at once, and once per database however many processes do.
 */
export async function getCredentials(deps: Deps, appId: string, provider: Provider, livemode: boolean): Promise<unknown> {
  const key = aad(appId, provider, livemode);
  const hit = cache.get(key);
  if (hit && Date.now() - hit.at < CACHE_MS) return hit.cred;
  let inFlight = loading.get(deps.db);
  if (!inFlight) loading.set(deps.db, (inFlight = new Map()));
  let load = inFlight.get(key);
  if (!load) {
    load = loadCredentials(deps, appId, provider, livemode).finally(() => inFlight.delete(key));
    inFlight.set(key, load);
  }
  return load;
}

async function loadCredentials(deps: Deps, appId: string, provider: Provider, livemode: boolean): Promise<unknown> {
  const key = aad(appId, provider, livemode);
  const channel = channelFor(provider);
  if (!channel) throw new ChannelConfigError(`channel ${provider} is not available in this build`);
  const read = () => deps.db('channel_configs').where({ app_id: appId, provider, livemode }).first('config_sealed', 'generated');
  let row = await read();
  // Simulator keys point at /sandbox, which is not mounted: say so now rather than call a 404 (or
  // an address this host cannot reach) and report the channel as down.
  if (row && isGenerated(row) && !deps.config.sandbox) throw new ChannelConfigError(noSimulator(provider));
  if (!row) {
    await provisionTestConfig(deps, appId, provider, livemode);
    row = await read();
  }
  const cred = channel.parseCredentials(JSON.parse(unseal(deps.config.masterKeyBytes, row.config_sealed, key)));
  cache.set(key, { cred, at: Date.now() });
  return cred;
}

const isGenerated = (row: { generated?: unknown }) => row.generated === true || row.generated === 1;

/**
 * The stored (unsealed) configs of an app, as uploaded: for the console's credential check and
 * certificate expiry banner (apps/credential-check.ts), which look at fields the parsed
 * credentials do not keep (certificate dates). Never for display.
 */
export async function readStoredConfigs(
  deps: Pick<Deps, 'db' | 'config'>,
  appId: string,
  filter: { provider?: Provider; livemode?: boolean } = {},
): Promise<Array<{ provider: Provider; livemode: boolean; generated: boolean; raw: unknown }>> {
  const rows = await deps.db('channel_configs').where({ app_id: appId, ...filter }).select('provider', 'livemode', 'generated', 'config_sealed');
  return rows.map((row) => {
    const livemode = row.livemode === true || row.livemode === 1;
    return { provider: row.provider as Provider, livemode, generated: isGenerated(row), raw: JSON.parse(unseal(deps.config.masterKeyBytes, row.config_sealed, aad(appId, row.provider, livemode))) };
  });
}

const noSimulator = (provider: Provider) =>
  `${provider} has no test-mode credentials of this app's own, and ${SANDBOX_OFF}: store the channel's sandbox credentials (checkstand channel set --mode test, or the console's channels page)`;

/** Thrown inside the provisioning transaction to roll it back when another process stored first. */
class ProvisionedElsewhere extends Error {}

/**
 * Registers a merchant at the simulator and stores its credentials as the app's test config,
 * in one transaction whose config insert is "if absent": a process that loses the race (on
 * PostgreSQL its insert waits for the winner's commit) rolls its merchant back and reads the
 * winner's config, never its own.
 */
async function provisionTestConfig(deps: Deps, appId: string, provider: Provider, livemode: boolean): Promise<void> {
  const sandbox = !livemode ? sandboxFor(deps.config, provider) : undefined;
  if (!sandbox) {
    throw new ChannelConfigError(!livemode && hasSimulator(provider) ? noSimulator(provider) : `${provider} is not configured for this app in ${livemode ? 'live' : 'test'} mode`);
  }
  const draft = await sandbox.draftMerchant({ db: deps.db, publicUrl: deps.config.publicUrl, masterKey: deps.config.masterKeyBytes, logger: deps.logger });
  try {
    await deps.db.transaction(async (trx) => {
      const raw = await draft.register(trx, { appId, notifyUrl: `${deps.config.publicUrl}/notify/${provider}/${appId}` });
      const now = nowSeconds();
      const sealed = seal(deps.config.masterKeyBytes, JSON.stringify(raw), aad(appId, provider, livemode));
      const stored = await trx('channel_configs')
        .insert({ app_id: appId, provider, livemode, config_sealed: sealed, generated: true, created: now, updated: now })
        .onConflict(['app_id', 'provider', 'livemode'])
        .ignore()
        .returning('app_id');
      if (stored.length === 0) throw new ProvisionedElsewhere();
    });
    deps.logger.info('test credentials provisioned at the simulator', { app_id: appId, provider });
  } catch (err) {
    if (!(err instanceof ProvisionedElsewhere)) throw err;
    deps.logger.debug('test credentials were provisioned by another process first; using those', { app_id: appId, provider });
  }
}

/**
 * Every usable config of an app for one provider, with its mode (a notify names no mode). The
 * list of modes is cached like the credentials; `fresh` reads it again (a config another
 * process has just provisioned). Simulator keys are left out while the simulators are off: no
 * notify can come from them.
 */
export async function getAllCredentials(
  deps: Deps,
  appId: string,
  provider: Provider,
  opts: { fresh?: boolean } = {},
): Promise<Array<{ livemode: boolean; cred: unknown }>> {
  const key = `${appId}:${provider}`;
  let hit = opts.fresh ? undefined : modesCache.get(key);
  if (!hit || Date.now() - hit.at >= CACHE_MS) {
    const rows = await deps.db('channel_configs').where({ app_id: appId, provider }).select('livemode', 'generated');
    const usable = rows.filter((r) => deps.config.sandbox || !isGenerated(r));
    hit = { modes: usable.map((r) => r.livemode === true || r.livemode === 1), at: Date.now() };
    // Only a known app's modes are kept: notifies for made-up app ids must not fill the map.
    if (hit.modes.length) {
      if (modesCache.size > 10_000) modesCache.clear();
      modesCache.set(key, hit);
    }
  }
  const out: Array<{ livemode: boolean; cred: unknown }> = [];
  for (const livemode of hit.modes) out.push({ livemode, cred: await getCredentials(deps, appId, provider, livemode) });
  return out;
}
