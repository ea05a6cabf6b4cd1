import type { Knex } from 'knex';

/**
 * The UnionPay simulator's own state: its CA (root → middle → signing leaf, keys sealed), the
 * merchants' signing certificates by certId, and transactions keyed as UnionPay keys them
 * (merId + orderId + txnTime; an orderId is unique per merchant and trading day). Refunds are
 * transactions of their own (txnType 04/31) pointing at the payment by origQryId.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sandbox_unionpay_ca', (t) => {
    t.string('id', 20).primary();
    t.text('data_sealed').notNullable();
    t.bigInteger('created').notNullable();
  });
  await knex.schema.createTable('sandbox_unionpay_merchants', (t) => {
    t.string('mer_id', 15).primary();
    t.string('cert_id', 40).notNullable().unique();
    t.text('sign_cert').notNullable();
    t.bigInteger('created').notNullable();
  });
  await knex.schema.createTable('sandbox_unionpay_txns', (t) => {
    t.string('mer_id', 15).notNullable();
    t.string('order_id', 40).notNullable();
    t.string('txn_date', 8).notNullable();
    t.string('txn_time', 14).notNullable();
    t.string('txn_type', 2).notNullable();
    t.string('query_id', 32).notNullable().unique();
    t.string('orig_qry_id', 32);
    t.string('status', 12).notNullable();
    t.bigInteger('amount').notNullable();
    t.bigInteger('amount_refunded').notNullable().defaultTo(0);
    t.text('data').notNullable();
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.primary(['mer_id', 'order_id', 'txn_date']);
    t.index(['orig_qry_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const t of ['sandbox_unionpay_txns', 'sandbox_unionpay_merchants', 'sandbox_unionpay_ca']) await knex.schema.dropTableIfExists(t);
}
