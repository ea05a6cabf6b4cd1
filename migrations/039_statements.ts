import type { Knex } from 'knex';

/**
 * Channel statements (对账单) and what matching them found (server/statements): one row per app,
 * mode, provider, Beijing day and kind (trade, fundflow) holding the file as the channel served it
 * with its SHA-256; its parsed lines; and the discrepancies of a day, unique by what they are about
 * so a re-fetch never duplicates one.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('statements', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable().references('apps.id').onDelete('CASCADE');
    t.boolean('livemode').notNullable();
    t.string('provider', 20).notNullable();
    t.string('bill_date', 10).notNullable();
    t.string('kind', 16).notNullable();
    // pending (claimed by a fetch), fetched, missing (the channel has none), failed (see error).
    t.string('status', 16).notNullable();
    // fetch (the daily job or the console's "fetch now") or upload.
    t.string('source', 16).notNullable();
    t.binary('file');
    t.string('file_name', 200);
    t.string('sha256', 64);
    t.string('channel_hash', 100);
    t.integer('line_count').notNullable().defaultTo(0);
    t.text('error');
    t.integer('attempts').notNullable().defaultTo(0);
    t.bigInteger('next_fetch_at_ms');
    t.bigInteger('fetched_at');
    t.bigInteger('checked_at');
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.unique(['app_id', 'livemode', 'provider', 'bill_date', 'kind']);
    t.index(['status', 'next_fetch_at_ms']);
    t.index(['app_id', 'livemode', 'bill_date']);
  });

  await knex.schema.createTable('statement_rows', (t) => {
    t.increments('id').primary();
    t.string('statement_id', 40).notNullable().references('statements.id').onDelete('CASCADE');
    t.integer('line').notNullable();
    t.string('type', 16).notNullable();
    t.string('order_no', 64).notNullable();
    t.string('refund_no', 64);
    t.string('channel_trade_no', 100);
    t.bigInteger('amount').notNullable();
    t.bigInteger('fee').notNullable().defaultTo(0);
    t.string('currency', 3).notNullable();
    t.string('channel_status', 40);
    t.bigInteger('time');
    // Our channel code of the matched attempt (alipay_pc, wechat_native…), for the summary's fees per channel.
    t.string('channel', 20);
    t.index(['statement_id']);
    t.index(['order_no']);
  });

  await knex.schema.createTable('statement_discrepancies', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable().references('apps.id').onDelete('CASCADE');
    t.boolean('livemode').notNullable();
    t.string('provider', 20).notNullable();
    t.string('bill_date', 10).notNullable();
    t.string('kind', 24).notNullable();
    // What it is about: the order number and refund number at the channel ('' when none).
    t.string('order_no', 64).notNullable();
    t.string('refund_no', 64).notNullable().defaultTo('');
    t.string('payment_id', 40);
    t.string('refund_id', 40);
    t.bigInteger('ours_amount');
    t.bigInteger('theirs_amount');
    t.string('ours_status', 24);
    t.string('theirs_status', 40);
    t.string('currency', 3);
    t.text('detail').notNullable();
    // open, gone (a re-check no longer finds it), resolved (by a user, with a note).
    t.string('status', 16).notNullable();
    t.text('resolution_note');
    t.string('resolved_by', 200);
    t.bigInteger('resolved_at');
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.unique(['app_id', 'livemode', 'provider', 'bill_date', 'kind', 'order_no', 'refund_no']);
    t.index(['app_id', 'livemode', 'bill_date']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('statement_discrepancies');
  await knex.schema.dropTableIfExists('statement_rows');
  await knex.schema.dropTableIfExists('statements');
}
