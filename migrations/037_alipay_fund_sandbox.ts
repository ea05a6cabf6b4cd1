import type { Knex } from 'knex';

/**
 * The Alipay simulator's fund-out orders (alipay.fund.trans.uni.transfer): keyed by app and
 * out_biz_no (Alipay's idempotency key), findable by order_id and pay_fund_order_id for
 * alipay.fund.trans.common.query, and how many times each was paid (exactly-once checks).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sandbox_alipay_fund_transfers', (t) => {
    t.string('app_id', 32).notNullable();
    t.string('out_biz_no', 64).notNullable();
    t.string('order_id', 64).notNullable().unique();
    t.string('pay_fund_order_id', 64).notNullable().unique();
    t.string('status', 16).notNullable();
    t.bigInteger('amount').notNullable();
    t.integer('paid_count').notNullable().defaultTo(0);
    t.text('data').notNullable();
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.primary(['app_id', 'out_biz_no']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('sandbox_alipay_fund_transfers');
}
