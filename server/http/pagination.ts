import type { Knex } from 'knex';
import { z } from 'zod';
import { invalid } from '../errors.ts';

export const listParams = {
  limit: z.coerce.number().int().min(1).max(100).default(10),
  starting_after: z.string().max(64).optional(),
  ending_before: z.string().max(64).optional(),
};

/** A unix-seconds filter from a query string; z.coerce would read an empty `created[gte]=` as 0 and `0x10` as 16. */
export const timestampParam = z.string().regex(/^\d{1,15}$/, 'must be a unix timestamp in seconds').transform(Number);

/** The schema of a list page of `item`s: `{object: "list", url, data, has_more}`. */
export function listPageSchema<T extends z.ZodType>(item: T, id: string) {
  return z
    .object({ object: z.literal('list'), url: z.string(), data: z.array(item), has_more: z.boolean() })
    .strict()
    .meta({ id });
}

export interface ListPage<T> {
  object: 'list';
  url: string;
  data: T[];
  has_more: boolean;
}

/**
 * Stripe-style cursor pagination over (created desc, id desc). The cursor is an object id;
 * its row must be in the same scoped query, so one app can never page into another's data.
 */
export async function paginate<T>(
  scoped: () => Knex.QueryBuilder,
  opts: { limit: number; starting_after?: string; ending_before?: string; url: string; param?: string },
  map: (row: any) => T,
): Promise<ListPage<T>> {
  const cursorId = opts.starting_after ?? opts.ending_before;
  let q = scoped();
  if (cursorId) {
    const cursor = await scoped().where('id', cursorId).first('created', 'id');
    if (!cursor) throw invalid('resource_missing', `No such object: '${cursorId}'`, opts.starting_after ? 'starting_after' : 'ending_before');
    // A row-value comparison, which SQLite and PostgreSQL both turn into one index range on
    // (…, created, id); the equivalent `created < ? OR (created = ? AND id < ?)` was a filter
    // over every row from the newest on, however deep the page.
    q = q.whereRaw(`(created, id) ${opts.starting_after ? '<' : '>'} (?, ?)`, [cursor.created, cursor.id]);
  }
  const ascending = Boolean(opts.ending_before && !opts.starting_after);
  const rows = await q.orderBy([{ column: 'created', order: ascending ? 'asc' : 'desc' }, { column: 'id', order: ascending ? 'asc' : 'desc' }]).limit(opts.limit + 1);
  const has_more = rows.length > opts.limit;
  const page = rows.slice(0, opts.limit);
  if (ascending) page.reverse();
  return { object: 'list', url: opts.url, data: page.map(map), has_more };
}
