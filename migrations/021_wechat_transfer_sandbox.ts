import type { Knex } from 'knex';

/**
 * The WeChat Pay simulator's 商家转账 bills (transfer-bills): keyed by merchant and out_bill_no
 * (WeChat's idempotency key), findable by transfer_bill_no and by the opaque package_info the
 * recipient's WeChat confirms with, and how many times each was paid (exactly-once checks).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sandbox_wechatpay_transfer_bills', (t) => {
    t.string('mchid', 32).notNullable();
    t.string('out_bill_no', 32).notNullable();
    t.string('transfer_bill_no', 64).notNullable().unique();
    t.string('package_info', 128).notNullable().unique();
    t.string('state', 24).notNullable();
    t.bigInteger('amount').notNullable();
    t.integer('paid_count').notNullable().defaultTo(0);
    t.text('data').notNullable();
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.primary(['mchid', 'out_bill_no']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('sandbox_wechatpay_transfer_bills');
}
