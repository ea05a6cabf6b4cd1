import type { Knex } from 'knex';

/**
 * Recurring payments (DESIGN §2.5): agreements, the channel mandates (Alipay 周期扣款, WeChat
 * 委托代扣) a customer signs in the wallet.
 * - external_agreement_no is Checkstand's number for the mandate at the channel (its idempotency
 *   key there), unique per provider: a notify names it, and nothing else of ours;
 * - channel_agreement_no is the channel's own number, known once the customer signed;
 * - state changes are conditional updates on status (pending → active → terminated).
 * The simulator keeps its side of each mandate in sandbox_agreements.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('agreements', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable().references('apps.id');
    t.boolean('livemode').notNullable();
    t.string('customer_id', 40).notNullable().references('customers.id');
    t.string('channel', 16).notNullable();
    t.string('status', 16).notNullable();
    t.string('external_agreement_no', 32).notNullable();
    t.string('channel_agreement_no', 64);
    t.string('period_type', 8).notNullable();
    t.integer('period').notNullable();
    t.string('execute_time', 10).notNullable();
    t.bigInteger('single_amount_max').notNullable();
    t.string('currency', 3).notNullable();
    t.text('next_action');
    t.string('terminated_reason', 32);
    t.text('metadata').notNullable().defaultTo('{}');
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.unique(['channel', 'external_agreement_no']);
    t.index(['app_id', 'livemode', 'created', 'id'], 'agreements_created_index');
    t.index(['channel', 'channel_agreement_no']);
  });

  await knex.schema.createTable('sandbox_agreements', (t) => {
    t.string('provider', 16).notNullable();
    t.string('merchant_id', 40).notNullable();
    t.string('external_agreement_no', 64).notNullable();
    t.string('agreement_no', 64).notNullable();
    // Alipay's words: TEMP (stored, not yet signed), NORMAL, UNSIGN.
    t.string('status', 16).notNullable();
    t.text('data').notNullable();
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.primary(['provider', 'merchant_id', 'external_agreement_no']);
    t.unique(['provider', 'agreement_no']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('sandbox_agreements');
  await knex.schema.dropTable('agreements');
}
