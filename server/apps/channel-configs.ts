import type { Knex } from 'knex';
import { seal, unseal, nowSeconds } from '../crypto.ts';
import { ChannelConfigError } from '../errors.ts';
import { channelFor, sandboxFor } from '../channels/registry.ts';
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
  channel.parseCredentials(raw);
  const now = nowSeconds();
  const sealed = seal(deps.config.masterKeyBytes, JSON.stringify(raw), aad(appId, provider, livemode));
  await deps.db('channel_configs')
    .insert({ app_id: appId, provider, livemode, config_sealed: sealed, generated: false, created: now, updated: now })
    .onConflict(['app_id', 'provider', 'livemode'])
    .merge({ config_sealed: sealed, generated: false, updated: now });
  cache.clear();
}

const cache = new Map<string, { cred: unknown; at: number }>();
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
  const read = () => deps.db('channel_configs').where({ app_id: appId, provider, livemode }).first('config_sealed');
  let row = await read();
  if (!row) {
    await provisionTestConfig(deps, appId, provider, livemode);
    row = await read();
  }
  const cred = channel.parseCredentials(JSON.parse(unseal(deps.config.masterKeyBytes, row.config_sealed, key)));
  cache.set(key, { cred, at: Date.now() });
  return cred;
}

/** Thrown inside the provisioning transaction to roll it back when another process stored first. */
class ProvisionedElsewhere extends Error {}

/**
 * Registers a merchant at the simulator and stores its credentials as the app's test config,
 * in one transaction whose config insert is "if absent": a process that loses the race (on
 * PostgreSQL its insert waits for the winner's commit) rolls its merchant back and reads the
 * winner's config, never its own.
 */
async function provisionTestConfig(deps: Deps, appId: string, provider: Provider, livemode: boolean): Promise<void> {
  const sandbox = !livemode ? sandboxFor(provider) : undefined;
  if (!sandbox) throw new ChannelConfigError(`${provider} is not configured for this app in ${livemode ? 'live' : 'test'} mode`);
  const draft = await sandbox.draftMerchant({ db: deps.db, publicUrl: deps.config.publicUrl, masterKey: deps.config.masterKeyBytes, logger: deps.logger });
  try {
    await deps.db.transaction(async (trx) => {
      const raw = await draft.register(trx);
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

/** Every stored config of an app for one provider, with its mode (a notify names no mode). */
export async function getAllCredentials(deps: Deps, appId: string, provider: Provider): Promise<Array<{ livemode: boolean; cred: unknown }>> {
  const rows = await deps.db('channel_configs').where({ app_id: appId, provider }).select('livemode');
  const out: Array<{ livemode: boolean; cred: unknown }> = [];
  for (const r of rows) {
    const livemode = r.livemode === true || r.livemode === 1;
    out.push({ livemode, cred: await getCredentials(deps, appId, provider, livemode) });
  }
  return out;
}
