import type { Knex } from 'knex';

/**
 * payment_attempts.channel_ref: what an adapter needs later about its order and cannot derive
 * from the order number (PayPal's order id, the exact UnionPay txnTime sent), as createPayment
 * returned it; handed back to the adapter with every query, close and refund.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payment_attempts', (t) => {
    t.text('channel_ref');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payment_attempts', (t) => {
    t.dropColumn('channel_ref');
  });
}
