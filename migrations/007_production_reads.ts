import type { Knex } from 'knex';

/**
 * The reads that must stay fast at a million payments (bench/queries.ts times each one):
 * - events.object_id, the id of the object an event carries (pay_…, re_…, we_…), so a payment's
 *   page finds its events by index instead of a LIKE over the JSON of every later event;
 * - payments by paid time, for reconciliation: with channel, currency and amount in the index its
 *   totals are read from the index alone, and (paid_at, id) orders the CSV's keyset reads;
 * - payments and refunds by status or channel in created order, so a list filtered to a rare
 *   value reads only matching rows (SQLite's planner has no statistics and walked every row);
 * - refunds in created order: the refunds list had no index for its order at all;
 * - refunds.channel and refunds.currency (the paying attempt's channel, the payment's currency,
 *   both fixed when the refund is made): reconciliation's refund totals then come from one index
 *   instead of two primary-key lookups per refund.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('events', (t) => {
    t.string('object_id', 40);
  });
  // Every stored event is JSON.stringify output with data.object.id (events/repo.ts insertEvent).
  if (knex.client.config.client === 'pg') {
    await knex.raw(`update events set object_id = (data::json #>> '{object,id}')`);
    // Statistics for the new column now, not at autovacuum's next pass: until then the planner
    // guesses thousands of events per object and may sort them all.
    await knex.raw('analyze events');
  } else {
    await knex.raw(`update events set object_id = json_extract(data, '$.object.id') where json_valid(data)`);
  }
  await knex.schema.alterTable('events', (t) => {
    t.index(['object_id']);
  });
  await knex.schema.alterTable('payments', (t) => {
    t.index(['app_id', 'livemode', 'status', 'paid_at', 'id', 'channel', 'currency', 'amount'], 'payments_paid_index');
    t.index(['app_id', 'livemode', 'status', 'created', 'id'], 'payments_status_created_index');
    t.index(['app_id', 'livemode', 'channel', 'created', 'id'], 'payments_channel_created_index');
    t.index(['app_id', 'livemode', 'status', 'channel', 'created', 'id'], 'payments_status_channel_created_index');
  });
  await knex.schema.alterTable('refunds', (t) => {
    t.string('channel', 20);
    t.string('currency', 3);
  });
  await knex.raw(`update refunds set
    channel = (select a.channel from payment_attempts a where a.id = refunds.attempt_id),
    currency = (select p.currency from payments p where p.id = refunds.payment_id)`);
  await knex.schema.alterTable('refunds', (t) => {
    t.index(['app_id', 'livemode', 'created', 'id'], 'refunds_created_index');
    t.index(['app_id', 'livemode', 'status', 'created', 'id', 'channel', 'currency', 'automatic', 'amount'], 'refunds_status_created_index');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('refunds', (t) => {
    t.dropIndex([], 'refunds_created_index');
    t.dropIndex([], 'refunds_status_created_index');
  });
  await knex.schema.alterTable('refunds', (t) => {
    t.dropColumn('channel');
    t.dropColumn('currency');
  });
  await knex.schema.alterTable('payments', (t) => {
    t.dropIndex([], 'payments_paid_index');
    t.dropIndex([], 'payments_status_created_index');
    t.dropIndex([], 'payments_channel_created_index');
    t.dropIndex([], 'payments_status_channel_created_index');
  });
  await knex.schema.alterTable('events', (t) => {
    t.dropIndex(['object_id']);
    t.dropColumn('object_id');
  });
}
