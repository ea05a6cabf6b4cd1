import type { Deps } from '../deps.ts';
import type { Provider } from '../channels/types.ts';
import type { TransferNotification } from '../channels/payouts.ts';

export type MoneyOutNoticeOutcome = { ok: true; changed: boolean } | { ok: false; reason: string };

/** A verified transfer result from the channel (filled in by the transfers domain). */
export async function applyTransferNotice(
  _deps: Deps,
  _ctx: { provider: Provider; appId: string; livemode: boolean; cred: unknown },
  _n: TransferNotification,
): Promise<MoneyOutNoticeOutcome> {
  return { ok: false, reason: 'transfers are not handled yet' };
}
