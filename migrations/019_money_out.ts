import type { Knex } from 'knex';

/**
 * Money out (DESIGN §2.4): transfers (企业付款) and red packets (红包).
 * - transfer_no / packet_no is Checkstand's number at the channel (Alipay out_biz_no, WeChat
 *   out_bill_no / mch_billno), fixed when the row is written and kept for every retry: unique per
 *   channel, so two objects can never share one;
 * - out_transfer_no / out_red_packet_no are the merchant's, unique per app and mode;
 * - next_query_at_ms is the row's lease and its next due time: whoever moved it forward submits
 *   or queries, so two processes never race on one object; null once final (or waiting for
 *   approval);
 * - submit_count is raised before every submission: a row found with submit_count > 0 and no
 *   answer may have reached the channel, and is queried before it is sent again;
 * - transfer_day_totals holds what each app and mode sent out per Beijing day, reserved by a
 *   conditional update in the transaction that creates a transfer (the daily limit's race).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('transfers', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable().references('apps.id');
    t.boolean('livemode').notNullable();
    t.string('channel', 16).notNullable();
    t.bigInteger('amount').notNullable();
    t.string('currency', 3).notNullable();
    t.string('out_transfer_no', 64).notNullable();
    t.string('transfer_no', 32).notNullable();
    t.string('recipient_type', 24).notNullable();
    t.string('recipient_account', 128).notNullable();
    t.string('recipient_name', 128);
    t.string('description', 200).notNullable();
    t.string('status', 24).notNullable();
    t.text('next_action');
    t.string('failure_code', 64);
    t.string('failure_message', 500);
    t.string('channel_transfer_no', 64);
    t.string('customer_id', 40).references('customers.id');
    t.string('source', 16).notNullable();
    t.string('day', 10).notNullable();
    t.text('metadata').notNullable().defaultTo('{}');
    t.string('created_by', 40);
    t.string('approved_by', 40);
    t.bigInteger('approved_at');
    t.bigInteger('paid_at');
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.bigInteger('next_query_at_ms');
    t.integer('submit_count').notNullable().defaultTo(0);
    t.integer('query_count').notNullable().defaultTo(0);
    t.unique(['app_id', 'livemode', 'out_transfer_no']);
    t.unique(['channel', 'transfer_no']);
    t.index(['app_id', 'livemode', 'created', 'id'], 'transfers_created_index');
    t.index(['next_query_at_ms'], 'transfers_due_index');
  });

  await knex.schema.createTable('transfer_day_totals', (t) => {
    t.string('app_id', 40).notNullable();
    t.boolean('livemode').notNullable();
    t.string('day', 10).notNullable();
    t.bigInteger('amount').notNullable();
    t.primary(['app_id', 'livemode', 'day']);
  });

  // What the operator allows an app to send, per mode: null is no limit (live mode has defaults, transfers/limits.ts).
  await knex.schema.createTable('transfer_settings', (t) => {
    t.string('app_id', 40).notNullable().references('apps.id');
    t.boolean('livemode').notNullable();
    t.bigInteger('single_limit');
    t.bigInteger('daily_limit');
    t.bigInteger('approval_threshold');
    t.bigInteger('updated_ms').notNullable();
    t.primary(['app_id', 'livemode']);
  });

  await knex.schema.createTable('red_packets', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable().references('apps.id');
    t.boolean('livemode').notNullable();
    t.string('channel', 16).notNullable();
    t.bigInteger('amount').notNullable();
    t.string('currency', 3).notNullable();
    t.string('out_red_packet_no', 64).notNullable();
    t.string('packet_no', 32).notNullable();
    t.string('recipient_type', 24).notNullable();
    t.string('recipient_account', 128).notNullable();
    t.string('recipient_name', 128);
    t.string('sender_name', 64).notNullable();
    t.string('wishing', 256).notNullable();
    t.string('act_name', 64).notNullable();
    t.string('remark', 256).notNullable();
    t.string('scene_id', 16);
    t.string('client_ip', 64).notNullable();
    t.string('status', 16).notNullable();
    t.string('failure_code', 64);
    t.string('failure_message', 500);
    t.string('channel_packet_no', 64);
    t.text('metadata').notNullable().defaultTo('{}');
    t.bigInteger('sent_at');
    t.bigInteger('received_at');
    t.bigInteger('refunded_at');
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.bigInteger('next_query_at_ms');
    t.integer('submit_count').notNullable().defaultTo(0);
    t.integer('query_count').notNullable().defaultTo(0);
    t.unique(['app_id', 'livemode', 'out_red_packet_no']);
    t.unique(['channel', 'packet_no']);
    t.index(['app_id', 'livemode', 'created', 'id'], 'red_packets_created_index');
    t.index(['next_query_at_ms'], 'red_packets_due_index');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('red_packets');
  await knex.schema.dropTable('transfer_settings');
  await knex.schema.dropTable('transfer_day_totals');
  await knex.schema.dropTable('transfers');
}
