/**
 * Test helpers for money out (test mode only, like Stripe's): act as the recipient at the
 * simulator — confirm or decline a WeChat transfer, let its 24 h confirmation lapse, open a red
 * packet or leave it unopened until it is refunded. The simulator then behaves as the channel
 * (a notify, or a new state for the poll), and the gateway learns it through its real paths; the
 * helper asks the channel once more before answering, as the worker would.
 */
import type { AuthContext, Deps } from '../deps.ts';
import { SANDBOX_OFF, channelFor, sandboxFor } from '../channels/registry.ts';
import { getCredentials } from '../apps/channel-configs.ts';
import { invalid } from '../errors.ts';
import { driveTransfer, leaseMsOf, transferOf, retrieveTransfer } from './service.ts';
import { FINAL_TRANSFER_STATUSES, findTransferById } from './repo.ts';
import { driveRedPacket, redPacketOf, retrieveRedPacket } from '../red-packets/service.ts';
import { FINAL_RED_PACKET_STATUSES, findRedPacketById } from '../red-packets/repo.ts';

const sandboxDepsOf = (deps: Deps) => ({ db: deps.db, publicUrl: deps.config.publicUrl, masterKey: deps.config.masterKeyBytes, logger: deps.logger });

async function merchantIdOf(deps: Deps, appId: string, provider: 'alipay' | 'wechatpay', livemode: boolean): Promise<string> {
  const cred = await getCredentials(deps, appId, provider, livemode);
  const channel = channelFor(provider)!;
  return channel.merchantIdOf(cred) ?? channel.appIdOf(cred);
}

/**
 * Takes the row's lease from its next scheduled look (the object was submitted already: its
 * status says so, so no submission holds it); the lease, or undefined if another writer moved it.
 */
async function takeLease(deps: Deps, table: 'transfers' | 'red_packets', id: string, current: number | null): Promise<number | undefined> {
  const lease = Date.now() + leaseMsOf(deps);
  const q = deps.db(table).where({ id });
  if (current === null) q.whereNull('next_query_at_ms');
  else q.where('next_query_at_ms', current);
  return (await q.update({ next_query_at_ms: lease })) === 1 ? lease : undefined;
}

export async function simulateTransferRecipient(deps: Deps, auth: AuthContext, id: string, input: { outcome: 'confirm' | 'decline' | 'expire' }) {
  const t = await transferOf(deps, auth, id);
  const sandbox = sandboxFor(deps.config, t.channel);
  if (!deps.config.sandbox) throw invalid('sandbox_disabled', `Transfers cannot be simulated: ${SANDBOX_OFF}.`);
  if (!sandbox?.transferRecipient) throw invalid('parameter_invalid', `${t.channel} transfers need no recipient step: they are paid when submitted.`, 'id');
  if (t.status !== 'awaiting_recipient') throw invalid('transfer_not_awaiting_recipient', `This transfer is ${t.status}: only one awaiting its recipient can be confirmed, declined or left to lapse.`, 'id');
  await sandbox.transferRecipient(sandboxDepsOf(deps), { merchantId: await merchantIdOf(deps, t.app_id, t.channel, t.livemode), transferNo: t.transfer_no, outcome: input.outcome });
  const now = (await findTransferById(deps.db, t.id))!;
  if (!FINAL_TRANSFER_STATUSES.includes(now.status)) {
    // The notify may be late or lost: the channel is asked, as the worker would.
    const lease = await takeLease(deps, 'transfers', t.id, now.next_query_at_ms);
    if (lease) await driveTransfer(deps, now, lease);
  }
  return retrieveTransfer(deps, auth, id);
}

export async function simulateRedPacketRecipient(deps: Deps, auth: AuthContext, id: string, input: { outcome: 'open' | 'expire' }) {
  const p = await redPacketOf(deps, auth, id);
  const sandbox = sandboxFor(deps.config, p.channel);
  if (!deps.config.sandbox) throw invalid('sandbox_disabled', `Red packets cannot be simulated: ${SANDBOX_OFF}.`);
  if (!sandbox?.redPacketRecipient) throw invalid('parameter_invalid', `${p.channel} red packets are credited when sent: there is no recipient step.`, 'id');
  if (p.status !== 'sent' && p.status !== 'sending') throw invalid('red_packet_not_sent', `This red packet is ${p.status}: only a sent one can be opened or left to expire.`, 'id');
  await sandbox.redPacketRecipient(sandboxDepsOf(deps), { merchantId: await merchantIdOf(deps, p.app_id, p.channel, p.livemode), packetNo: p.packet_no, outcome: input.outcome });
  const now = (await findRedPacketById(deps.db, p.id))!;
  if (!FINAL_RED_PACKET_STATUSES.includes(now.status)) {
    // WeChat has no notify for red packets: this is the poll the worker would make.
    const lease = await takeLease(deps, 'red_packets', p.id, now.next_query_at_ms);
    if (lease) await driveRedPacket(deps, now, lease);
  }
  return retrieveRedPacket(deps, auth, id);
}
