import type { Deps } from '../deps.ts';
import type { Provider } from '../channels/types.ts';
import type { RedPacketNotification } from '../channels/payouts.ts';
import type { MoneyOutNoticeOutcome } from '../transfers/service.ts';

/** A verified red-packet result from the channel (filled in by the red-packets domain). */
export async function applyRedPacketNotice(
  _deps: Deps,
  _ctx: { provider: Provider; appId: string; livemode: boolean; cred: unknown },
  _n: RedPacketNotification,
): Promise<MoneyOutNoticeOutcome> {
  return { ok: false, reason: 'red packets are not handled yet' };
}
