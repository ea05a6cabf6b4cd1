import type { Knex } from 'knex';

/**
 * The account system (DESIGN §2.3): customers with a stored-value balance, its ledger, coupons
 * and their redemptions, and what a payment records of them.
 * - customers.balance is never negative: a CHECK constraint stands behind the conditional debits
 *   (`… where balance >= ?`) that decide races;
 * - (app_id, livemode, created, id) is the list's cursor order, so a page at a million customers
 *   is one index range;
 * - a redemption row per payment says whether the payment still holds its coupon use; the close
 *   of an unpaid payment releases it (and the counters) in its own transaction.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('customers', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable().references('apps.id');
    t.boolean('livemode').notNullable();
    t.string('out_user_id', 64);
    t.string('name', 256);
    t.string('email', 254);
    t.string('phone', 32);
    t.text('metadata').notNullable().defaultTo('{}');
    t.bigInteger('balance').notNullable().defaultTo(0);
    t.string('currency', 3).notNullable();
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.bigInteger('deleted_at');
    t.unique(['app_id', 'livemode', 'out_user_id']);
    t.index(['app_id', 'livemode', 'created', 'id'], 'customers_created_index');
    t.check('?? >= 0', ['balance'], 'customers_balance_not_negative');
  });

  await knex.schema.createTable('balance_transactions', (t) => {
    t.string('id', 40).primary();
    t.string('customer_id', 40).notNullable().references('customers.id');
    t.string('app_id', 40).notNullable();
    t.boolean('livemode').notNullable();
    t.string('type', 16).notNullable();
    t.bigInteger('amount').notNullable();
    t.bigInteger('balance_after').notNullable();
    t.string('source', 40);
    t.string('description', 500);
    t.bigInteger('created').notNullable();
    t.index(['customer_id', 'created', 'id'], 'balance_transactions_customer_index');
    t.index(['source']);
  });

  await knex.schema.createTable('coupons', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable().references('apps.id');
    t.boolean('livemode').notNullable();
    t.string('code', 64).notNullable();
    // The code as compared: codes are unique per app and mode whatever their case.
    t.string('code_key', 64).notNullable();
    t.bigInteger('amount_off');
    t.integer('percent_off');
    t.string('currency', 3);
    t.bigInteger('min_amount');
    t.bigInteger('max_discount');
    t.integer('max_redemptions');
    t.integer('per_customer_limit');
    t.bigInteger('valid_from');
    t.bigInteger('expires_at');
    t.integer('times_redeemed').notNullable().defaultTo(0);
    t.boolean('active').notNullable().defaultTo(true);
    t.text('metadata').notNullable().defaultTo('{}');
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.unique(['app_id', 'livemode', 'code_key']);
    t.index(['app_id', 'livemode', 'created', 'id'], 'coupons_created_index');
    t.check('?? >= 0', ['times_redeemed'], 'coupons_times_redeemed_not_negative');
  });

  // Uses of a per-customer-limited coupon by one customer: a counter row, raised by a conditional update.
  await knex.schema.createTable('coupon_customer_uses', (t) => {
    t.string('coupon_id', 40).notNullable().references('coupons.id');
    t.string('customer_id', 40).notNullable();
    t.integer('times_redeemed').notNullable().defaultTo(0);
    t.primary(['coupon_id', 'customer_id']);
  });

  await knex.schema.createTable('coupon_redemptions', (t) => {
    t.string('payment_id', 40).primary();
    t.string('coupon_id', 40).notNullable().references('coupons.id');
    t.string('customer_id', 40);
    t.string('status', 16).notNullable();
    t.bigInteger('created').notNullable();
  });

  await knex.schema.alterTable('payments', (t) => {
    t.string('customer_id', 40);
    t.string('coupon_id', 40);
    t.bigInteger('amount_original');
    t.bigInteger('amount_discount').notNullable().defaultTo(0);
    t.string('purpose', 16).notNullable().defaultTo('payment');
    t.boolean('allow_coupon_code').notNullable().defaultTo(false);
    // Open while the payer may still type a code: the first channel order closes it for good.
    t.boolean('coupon_entry_open').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payments', (t) => {
    for (const c of ['customer_id', 'coupon_id', 'amount_original', 'amount_discount', 'purpose', 'allow_coupon_code', 'coupon_entry_open']) t.dropColumn(c);
  });
  for (const t of ['coupon_redemptions', 'coupon_customer_uses', 'coupons', 'balance_transactions', 'customers']) await knex.schema.dropTableIfExists(t);
}
