import type { Knex } from 'knex';

/**
 * Subscriptions (DESIGN §2.5): recurring charges through an active agreement (Alipay 周期扣款).
 * - subscription_periods holds one row per billing period; (subscription_id, period_index) is
 *   the primary key, so a period exists once and is charged at most once. Each try of a period
 *   is one payment with one attempt whose channel order number is fixed (order_no) before it is
 *   sent; next_try_at_ms is the scheduler's due time and lease (conditional updates, and
 *   FOR UPDATE SKIP LOCKED on PostgreSQL), submit_count how often the current order was sent.
 * - clocked: the subscription runs on a test clock (test mode): only the test helper moves it,
 *   the background scheduler leaves its periods alone.
 * - payments.subscription_id / subscription_period: the period a payment charges.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('subscriptions', (t) => {
    t.string('id', 40).primary();
    t.string('app_id', 40).notNullable().references('apps.id');
    t.boolean('livemode').notNullable();
    t.string('customer_id', 40).notNullable().references('customers.id');
    t.string('agreement_id', 40).notNullable().references('agreements.id');
    t.bigInteger('amount').notNullable();
    t.string('currency', 3).notNullable();
    t.string('subject', 256).notNullable();
    t.string('interval', 8).notNullable();
    t.integer('interval_count').notNullable();
    t.bigInteger('trial_end');
    t.bigInteger('billing_cycle_anchor');
    // The agreement's scheduled date the first charged period starts on: its index from execute_time.
    t.integer('first_schedule_index').notNullable();
    t.bigInteger('current_period_start').notNullable();
    t.bigInteger('current_period_end').notNullable();
    t.string('status', 16).notNullable();
    t.boolean('cancel_at_period_end').notNullable().defaultTo(false);
    t.bigInteger('canceled_at');
    t.string('cancellation_reason', 32);
    t.string('latest_payment_id', 40);
    // Periods in a row whose every try failed: two cancel the subscription.
    t.integer('failed_periods').notNullable().defaultTo(0);
    // Test mode: the frozen time of the subscription's test clock, ms; null follows real time.
    t.bigInteger('test_clock_ms');
    t.text('metadata').notNullable().defaultTo('{}');
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.index(['app_id', 'livemode', 'created', 'id'], 'subscriptions_created_index');
    t.index(['agreement_id']);
  });

  await knex.schema.createTable('subscription_periods', (t) => {
    t.string('subscription_id', 40).notNullable().references('subscriptions.id');
    t.integer('period_index').notNullable();
    t.string('app_id', 40).notNullable();
    t.boolean('livemode').notNullable();
    t.bigInteger('period_start').notNullable();
    t.bigInteger('period_end').notNullable();
    t.string('scheduled_date', 10).notNullable();
    // pending (to charge), succeeded, failed (every try failed), canceled (the subscription ended first).
    t.string('status', 16).notNullable();
    t.string('payment_id', 40);
    t.string('order_no', 64);
    t.integer('tries').notNullable().defaultTo(0);
    t.bigInteger('next_try_at_ms');
    t.integer('submit_count').notNullable().defaultTo(0);
    t.boolean('clocked').notNullable().defaultTo(false);
    t.bigInteger('created').notNullable();
    t.bigInteger('updated_ms').notNullable();
    t.primary(['subscription_id', 'period_index']);
    t.index(['status', 'clocked', 'next_try_at_ms'], 'subscription_periods_due_index');
  });

  await knex.schema.alterTable('payments', (t) => {
    t.string('subscription_id', 40);
    t.integer('subscription_period');
    t.index(['subscription_id'], 'payments_subscription_index');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('payments', (t) => {
    t.dropIndex(['subscription_id'], 'payments_subscription_index');
    t.dropColumn('subscription_id');
    t.dropColumn('subscription_period');
  });
  await knex.schema.dropTable('subscription_periods');
  await knex.schema.dropTable('subscriptions');
}
