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
  modesCache.clear();
}

const cache = new Map<string, { cred: unknown; at: number }>();
/** The modes an app has a config for, per provider: every notify asks. */
const modesCache = new Map<string, { modes: boolean[]; at: number }>();
const CACHE_MS = 30_000;

/**
 * The parsed credentials of an app for a channel. In test mode an app without its own config
 * gets one provisioned at the simulator on first use (keys generated, stored sealed).
 */
export async function getCredentials(deps: Deps, appId: string, provider: Provider, livemode: boolean): Promise<unknown> {
  const key = aad(appId, provider, livemode);
  const hit = cache.get(key);
  if (hit && Date.now() - hit.at < CACHE_MS) return hit.cred;
  const channel = channelFor(provider);
  if (!channel) throw new ChannelConfigError(`channel ${provider} is not available in this build`);
  let row = await deps.db('channel_configs').where({ app_id: appId, provider, livemode }).first('config_sealed');
  if (!row) {
    const sandbox = !livemode ? sandboxFor(provider) : undefined;
    if (!sandbox) throw new ChannelConfigError(`${provider} is not configured for this app in ${livemode ? 'live' : 'test'} mode`);
    const raw = await sandbox.provision({ db: deps.db, publicUrl: deps.config.publicUrl, masterKey: deps.config.masterKeyBytes, logger: deps.logger });
    const now = nowSeconds();
    const sealed = seal(deps.config.masterKeyBytes, JSON.stringify(raw), key);
    // Two first uses may race: the unique key keeps one, and both read it back.
    await deps.db('channel_configs')
      .insert({ app_id: appId, provider, livemode, config_sealed: sealed, generated: true, created: now, updated: now })
      .onConflict(['app_id', 'provider', 'livemode'])
      .ignore();
    row = await deps.db('channel_configs').where({ app_id: appId, provider, livemode }).first('config_sealed');
  }
  const cred = channel.parseCredentials(JSON.parse(unseal(deps.config.masterKeyBytes, row.config_sealed, key)));
  cache.set(key, { cred, at: Date.now() });
  return cred;
}

/**
 * Every stored config of an app for one provider, with its mode (a notify names no mode). The
 * list of modes is cached like the credentials; `fresh` reads it again (a config another
 * process has just provisioned).
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
    const rows = await deps.db('channel_configs').where({ app_id: appId, provider }).select('livemode');
    hit = { modes: rows.map((r) => r.livemode === true || r.livemode === 1), at: Date.now() };
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
