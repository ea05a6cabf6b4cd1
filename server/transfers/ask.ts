/**
 * One turn at the channel for a money-out object (a transfer or a red packet), the exactly-once
 * rule both share: a row that may have reached the channel is queried first, and sent again
 * (same number, same body) only when the channel has none; each send is counted before it goes
 * out, so a crash leaves a row that is queried first. A refusal of the first submission outright
 * (its arguments, the merchant's setup) is a definite failure: nothing was paid. Anything else
 * thrown is an unknown answer, resolved by a later query.
 */
import type { Deps } from '../deps.ts';
import { ChannelConfigError, ChannelRequestError } from '../errors.ts';

type Answer = { status: string };

export async function askChannel<R extends Answer>(deps: Deps, row: {
  table: 'transfers' | 'red_packets';
  id: string;
  submitCount: number;
  /** Whether to ask the channel before sending (a row already submitted, or one the channel holds). */
  queryFirst: boolean;
  /** Whether a "not found" answer leads to a send. */
  mayResend: boolean;
  query: () => Promise<R>;
  send: () => Promise<R>;
}): Promise<{ result: R } | { unknown: unknown }> {
  const submittedBefore = row.submitCount > 0;
  try {
    let result = row.queryFirst ? await row.query() : ({ status: 'not_found' } as R);
    if (result.status === 'not_found' && row.mayResend) {
      await deps.db(row.table).where({ id: row.id }).increment('submit_count', 1);
      result = await row.send();
    } else {
      await deps.db(row.table).where({ id: row.id }).increment('query_count', 1);
    }
    return { result };
  } catch (err) {
    const definite = (err instanceof ChannelConfigError || err instanceof ChannelRequestError) && !submittedBefore;
    if (!definite) return { unknown: err };
    const code = err instanceof ChannelRequestError ? err.code : 'channel_not_configured';
    return { result: { status: 'failed', failureCode: code, failureMessage: (err as Error).message.slice(0, 500) } as unknown as R };
  }
}
