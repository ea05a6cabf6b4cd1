import type { Knex } from 'knex';

/** The whole gateway schema. JSON is stored as text so both databases behave the same. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('apps', (t) => {
    t.string('id', 40).primary();
    t.string('name', 200).notNullable();
    t.text('allowed_origins').notNullable().defaultTo('[]');
    t.bigInteger('created').notNullable();
  });

  await knex.schema.createTable('api_keys', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable().references('apps.id').onDelete('CASCADE');
    t.boolean('livemode').notNullable();
    t.string('key_hash', 64).notNullable().unique();
    t.string('key_hint', 40).notNullable();
    t.bigInteger('created').notNullable();
    t.bigInteger('revoked_at');
  });

  await knex.schema.createTable('channel_configs', (t) => {
    t.increments('id').primary();
    t.string('app_id', 40).notNullable().references('apps.id').onDelete('CASCADE');
    t.string('provider', 20).notNullable();
    t.boolean('livemode').notNullable();
    t.text('config_sealed').notNullable();
    t.boolean('generated').notNullable().defaultTo(false);
    t.bigInteger('created').notNullable();
    t.bigInteger('updated').notNullable();
    t.unique(['app_id', 'provider', 'livemode']);
  });

  await knex.schema.createTable('payments', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable().references('apps.id');
    t.boolean('livemode').notNullable();
    t.string('out_trade_no', 64).notNullable();
    t.bigInteger('amount').notNullable();
    t.string('currency', 3).notNullable();
    t.string('subject', 256).notNullable();
    t.text('description');
    t.string('channel', 20);
    t.string('status', 16).notNullable();
    t.bigInteger('amount_refunded').notNullable().defaultTo(0);
    t.string('channel_trade_no', 100);
    t.bigInteger('paid_at');
    t.bigInteger('expires_at').notNullable();
    t.text('return_url');
    t.text('metadata').notNullable().defaultTo('{}');
    t.string('checkout_token', 64).notNullable().unique();
    t.string('client_ip', 64);
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.unique(['app_id', 'livemode', 'out_trade_no']);
    t.index(['app_id', 'livemode', 'created', 'id']);
    t.index(['status', 'expires_at']);
  });

  // One row per order placed at a channel: channels refuse a reused order number.
  await knex.schema.createTable('payment_attempts', (t) => {
    t.string('id', 40).primary();
    t.string('payment_id', 40).notNullable().references('payments.id');
    t.string('app_id', 40).notNullable();
    t.boolean('livemode').notNullable();
    t.string('channel', 20).notNullable();
    t.string('provider', 20).notNullable();
    t.string('channel_order_no', 64).notNullable();
    t.string('status', 16).notNullable();
    t.string('channel_trade_no', 100);
    t.text('action');
    t.string('failure_code', 64);
    t.text('failure_message');
    t.bigInteger('next_query_at_ms');
    t.integer('query_count').notNullable().defaultTo(0);
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.unique(['provider', 'channel_order_no']);
    t.index(['payment_id']);
    t.index(['status', 'next_query_at_ms']);
  });

  await knex.schema.createTable('refunds', (t) => {
    t.string('id', 40).primary();
    t.string('payment_id', 40).notNullable().references('payments.id');
    t.string('attempt_id', 40);
    t.string('app_id', 40).notNullable();
    t.boolean('livemode').notNullable();
    t.bigInteger('amount').notNullable();
    t.string('status', 16).notNullable();
    t.string('reason', 256);
    t.string('out_refund_no', 64).notNullable();
    t.string('channel_refund_no', 100);
    t.text('failure_message');
    t.bigInteger('next_query_at_ms');
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.unique(['app_id', 'livemode', 'out_refund_no']);
    t.index(['payment_id']);
  });

  await knex.schema.createTable('events', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable();
    t.boolean('livemode').notNullable();
    t.string('type', 64).notNullable();
    t.text('data').notNullable();
    t.bigInteger('created').notNullable();
    t.index(['app_id', 'livemode', 'created', 'id']);
  });

  await knex.schema.createTable('webhook_endpoints', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable().references('apps.id').onDelete('CASCADE');
    t.boolean('livemode').notNullable();
    t.text('url').notNullable();
    t.text('enabled_events').notNullable();
    t.text('secret_sealed').notNullable();
    t.text('previous_secret_sealed');
    t.bigInteger('previous_secret_expires_at');
    t.string('status', 16).notNullable().defaultTo('enabled');
    t.string('disabled_reason', 200);
    t.bigInteger('failing_since');
    t.bigInteger('created').notNullable();
    t.bigInteger('deleted_at');
  });

  // One row per (event, endpoint): the outbox the delivery worker claims from.
  await knex.schema.createTable('webhook_deliveries', (t) => {
    t.string('id', 40).primary();
    t.string('event_id', 40).notNullable().references('events.id');
    t.string('endpoint_id', 40).notNullable().references('webhook_endpoints.id');
    t.string('status', 16).notNullable();
    t.integer('attempt_count').notNullable().defaultTo(0);
    t.bigInteger('next_attempt_at_ms').notNullable();
    t.bigInteger('locked_until_ms');
    t.integer('last_status_code');
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.index(['status', 'next_attempt_at_ms']);
    t.index(['event_id']);
  });

  await knex.schema.createTable('webhook_attempts', (t) => {
    t.increments('id').primary();
    t.string('delivery_id', 40).notNullable().references('webhook_deliveries.id');
    t.bigInteger('attempted_at_ms').notNullable();
    t.integer('status_code');
    t.integer('latency_ms').notNullable();
    t.text('response_excerpt');
    t.text('error');
    t.index(['delivery_id']);
  });

  await knex.schema.createTable('idempotency_keys', (t) => {
    t.string('app_id', 40).notNullable();
    t.boolean('livemode').notNullable();
    t.string('key', 255).notNullable();
    t.string('request_hash', 64).notNullable();
    t.string('state', 16).notNullable();
    t.integer('response_status');
    t.text('response_body');
    t.bigInteger('created_ms').notNullable();
    t.primary(['app_id', 'livemode', 'key']);
  });

  // The simulators' own state: what the channel would hold on its side.
  await knex.schema.createTable('sandbox_merchants', (t) => {
    t.string('provider', 20).notNullable();
    t.string('merchant_id', 64).notNullable();
    t.text('data_sealed').notNullable();
    t.bigInteger('created').notNullable();
    t.primary(['provider', 'merchant_id']);
  });

  await knex.schema.createTable('sandbox_orders', (t) => {
    t.string('provider', 20).notNullable();
    t.string('merchant_id', 64).notNullable();
    t.string('out_trade_no', 64).notNullable();
    t.string('trade_no', 64).notNullable();
    t.string('status', 24).notNullable();
    t.bigInteger('amount').notNullable();
    t.bigInteger('amount_refunded').notNullable().defaultTo(0);
    t.text('data').notNullable();
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.primary(['provider', 'merchant_id', 'out_trade_no']);
    t.unique(['provider', 'trade_no']);
  });

  await knex.schema.createTable('sandbox_refunds', (t) => {
    t.string('provider', 20).notNullable();
    t.string('merchant_id', 64).notNullable();
    t.string('out_trade_no', 64).notNullable();
    t.string('out_refund_no', 64).notNullable();
    t.string('refund_no', 64).notNullable();
    t.string('status', 24).notNullable();
    t.bigInteger('amount').notNullable();
    t.text('data').notNullable();
    t.bigInteger('created').notNullable();
    t.primary(['provider', 'merchant_id', 'out_trade_no', 'out_refund_no']);
  });

  await knex.schema.createTable('console_users', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable().references('apps.id').onDelete('CASCADE');
    t.string('email', 254).notNullable().unique();
    t.text('password_hash').notNullable();
    t.bigInteger('created').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const t of [
    'console_users', 'sandbox_refunds', 'sandbox_orders', 'sandbox_merchants', 'idempotency_keys',
    'webhook_attempts', 'webhook_deliveries', 'webhook_endpoints', 'events', 'refunds',
    'payment_attempts', 'payments', 'channel_configs', 'api_keys', 'apps',
  ]) {
    await knex.schema.dropTableIfExists(t);
  }
}
