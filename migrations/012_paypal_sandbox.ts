import type { Knex } from 'knex';

/**
 * The PayPal simulator's own tables: PayPal keys its objects by its own ids (orders, captures,
 * refunds), not by the merchant's order number, keeps invoice_id unique per merchant, and
 * replays PayPal-Request-Id answers, which the shared sandbox_* tables do not fit.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('paypal_sandbox_merchants', (t) => {
    t.string('merchant_id', 20).primary();
    t.string('client_id', 100).notNullable().unique();
    t.text('data_sealed').notNullable();
    t.bigInteger('created').notNullable();
  });
  await knex.schema.createTable('paypal_sandbox_tokens', (t) => {
    t.string('token_hash', 64).primary();
    t.string('merchant_id', 20).notNullable();
    t.bigInteger('expires_at').notNullable();
    t.index(['merchant_id']);
  });
  await knex.schema.createTable('paypal_sandbox_orders', (t) => {
    t.string('id', 24).primary();
    t.string('merchant_id', 20).notNullable();
    t.string('invoice_id', 127);
    t.string('status', 24).notNullable();
    t.text('data').notNullable();
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.unique(['merchant_id', 'invoice_id']);
  });
  await knex.schema.createTable('paypal_sandbox_captures', (t) => {
    t.string('id', 24).primary();
    t.string('merchant_id', 20).notNullable();
    t.string('order_id', 24).notNullable().unique();
    t.string('status', 24).notNullable();
    t.bigInteger('amount').notNullable();
    t.bigInteger('amount_refunded').notNullable().defaultTo(0);
    t.text('data').notNullable();
    t.bigInteger('created').notNullable();
  });
  await knex.schema.createTable('paypal_sandbox_refunds', (t) => {
    t.string('id', 24).primary();
    t.string('merchant_id', 20).notNullable();
    t.string('capture_id', 24).notNullable();
    t.string('status', 24).notNullable();
    t.bigInteger('amount').notNullable();
    t.text('data').notNullable();
    t.bigInteger('created').notNullable();
    t.index(['capture_id']);
  });
  await knex.schema.createTable('paypal_sandbox_requests', (t) => {
    t.string('merchant_id', 20).notNullable();
    t.string('request_id', 108).notNullable();
    t.string('digest', 64).notNullable();
    t.integer('status').notNullable();
    t.text('body').notNullable();
    t.bigInteger('created').notNullable();
    t.primary(['merchant_id', 'request_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const t of ['paypal_sandbox_requests', 'paypal_sandbox_refunds', 'paypal_sandbox_captures', 'paypal_sandbox_orders', 'paypal_sandbox_tokens', 'paypal_sandbox_merchants']) {
    await knex.schema.dropTableIfExists(t);
  }
}
