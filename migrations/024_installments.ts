import type { Knex } from 'knex';

/**
 * payments.installments (DESIGN §2.5): Alipay Huabei installments (花呗分期) the merchant asked
 * for, as JSON `{"count":3|6|12,"fee_payer":"customer"|"merchant"}`; null for a payment paid at
 * once. Each attempt passes it to the channel (Alipay extend_params.hb_fq_num /
 * hb_fq_seller_percent). The simulator keeps its side in sandbox_orders.data.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payments', (t) => {
    t.string('installments', 64);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payments', (t) => {
    t.dropColumn('installments');
  });
}
