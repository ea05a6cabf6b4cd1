import type { Knex } from 'knex';

/**
 * payment_attempts.wallet: the wallet a card payment was made with (Stripe's
 * payment_method_details.card.wallet: apple_pay, google_pay, or card), shown in the console.
 * sandbox_stripe_idempotency: the Stripe simulator's idempotency layer (first answer per key).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payment_attempts', (t) => {
    t.string('wallet', 32);
  });
  await knex.schema.createTable('sandbox_stripe_idempotency', (t) => {
    t.string('account', 64).notNullable();
    t.string('idempotency_key', 255).notNullable();
    t.string('request_hash', 64).notNullable();
    t.integer('status').notNullable();
    t.text('body').notNullable();
    t.bigInteger('created').notNullable();
    t.primary(['account', 'idempotency_key']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('sandbox_stripe_idempotency');
  await knex.schema.alterTable('payment_attempts', (t) => {
    t.dropColumn('wallet');
  });
}
