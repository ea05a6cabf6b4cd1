import type { Knex } from 'knex';

/**
 * Indexes for the console's pages at a million payments (issue 16, bench/console.ts):
 * - payments by (app, mode, created, id) now carry status and amount: the reconciliation page's
 *   payments-created-per-day (the success-rate chart) is read from the index alone instead of a
 *   table row per payment (90 days: 260k rows), and the payments list's amount filter is checked
 *   on the index entries of its created range before any row is read. It replaces the
 *   four-column index it extends (same prefix, same uses).
 * - statement rows by statement carry channel, currency and fee: the summary's fees per day and
 *   channel are summed from the index (90 days of a busy Alipay account: 90k rows).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payments', (t) => {
    t.index(['app_id', 'livemode', 'created', 'id', 'status', 'amount'], 'payments_created_index');
  });
  await knex.schema.alterTable('payments', (t) => {
    t.dropIndex(['app_id', 'livemode', 'created', 'id']);
  });
  await knex.schema.alterTable('statement_rows', (t) => {
    t.index(['statement_id', 'channel', 'currency', 'fee'], 'statement_rows_fees_index');
  });
  await knex.schema.alterTable('statement_rows', (t) => {
    t.dropIndex(['statement_id']);
  });
  if (knex.client.config.client === 'pg') await knex.raw('analyze payments, statement_rows');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('statement_rows', (t) => {
    t.index(['statement_id']);
  });
  await knex.schema.alterTable('statement_rows', (t) => {
    t.dropIndex([], 'statement_rows_fees_index');
  });
  await knex.schema.alterTable('payments', (t) => {
    t.index(['app_id', 'livemode', 'created', 'id']);
  });
  await knex.schema.alterTable('payments', (t) => {
    t.dropIndex([], 'payments_created_index');
  });
}
