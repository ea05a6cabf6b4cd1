import type { Knex } from 'knex';
import type { Provider } from '../channels/types.ts';

/** The ticked checklist items of an app's channel in one mode (migrations/042_channel_onboarding.ts). */
export async function tickedItems(db: Knex, appId: string, livemode: boolean, provider: Provider): Promise<Map<string, { checkedBy: string; checkedMs: number }>> {
  const rows = await db('channel_onboarding_items').where({ app_id: appId, livemode, provider }).select('item', 'checked_by', 'checked_ms');
  return new Map(rows.map((r) => [r.item as string, { checkedBy: r.checked_by as string, checkedMs: Number(r.checked_ms) }]));
}

/**
 * Makes the ticked set exactly `items` (the whole checklist form is one submit): new ticks are
 * inserted with who and when, items no longer ticked are deleted, unchanged ones keep their
 * original tick. Returns what changed, for the audit log.
 */
export async function saveTickedItems(
  db: Knex,
  key: { appId: string; livemode: boolean; provider: Provider },
  items: readonly string[],
  userId: string,
): Promise<{ ticked: string[]; unticked: string[] }> {
  return db.transaction(async (trx) => {
    const where = { app_id: key.appId, livemode: key.livemode, provider: key.provider };
    const before = new Set((await trx('channel_onboarding_items').where(where).select('item')).map((r) => r.item as string));
    const ticked = items.filter((i) => !before.has(i));
    const unticked = [...before].filter((i) => !items.includes(i));
    if (unticked.length) await trx('channel_onboarding_items').where(where).whereIn('item', unticked).delete();
    if (ticked.length) {
      const now = Date.now();
      await trx('channel_onboarding_items')
        .insert(ticked.map((item) => ({ ...where, item, checked_by: userId, checked_ms: now })))
        .onConflict(['app_id', 'livemode', 'provider', 'item'])
        .ignore();
    }
    return { ticked, unticked };
  });
}
