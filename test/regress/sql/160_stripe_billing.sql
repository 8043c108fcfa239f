-- 160_stripe_billing — Stripe events (issue #15): checkout links an account, subscription events set the plan
-- from plan_prices (period end from the items, API 2025-03-31.basil), redeliveries are 'duplicate', older
-- events never move a subscription backwards, deleted → free at once, failed payments → past_due → held to the
-- free plan after darkspere.payment_grace → paid → restored; everything else 'ignored'; bad events name the field.
\set VERBOSITY terse

SELECT regress.finish_leftover_work() \gset
INSERT INTO darkspere.plan_prices VALUES ('price_pro_160', 'pro'), ('price_ent_160', 'enterprise');
SELECT darkspere.create_account('stripe-160', 'free') AS acct \gset

CREATE FUNCTION pg_temp.ev(id text, type text, created bigint, obj jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('id', id, 'object', 'event', 'type', type, 'created', created,
                              'api_version', '2025-03-31.basil', 'data', jsonb_build_object('object', obj))
$$;
CREATE FUNCTION pg_temp.sub(status text, price text, period_end bigint, cancel boolean DEFAULT false) RETURNS jsonb
LANGUAGE sql AS $$
    SELECT jsonb_build_object('id', 'sub_160', 'object', 'subscription', 'customer', 'cus_160', 'status', status,
        'cancel_at_period_end', cancel,
        'items', jsonb_build_object('object', 'list', 'data', jsonb_build_array(jsonb_build_object(
            'id', 'si_160', 'current_period_start', period_end - 2592000, 'current_period_end', period_end,
            'price', jsonb_build_object('id', price)))))
$$;
CREATE FUNCTION pg_temp.state(acct bigint) RETURNS TABLE (plan text, effective text, status text, sub_plan text,
    period_end timestamptz, cancel boolean, past_due boolean) LANGUAGE sql AS $$
    SELECT a.plan, darkspere.effective_plan(a.account_id), s.status, s.plan, s.current_period_end,
           s.cancel_at_period_end, s.past_due_since IS NOT NULL
      FROM darkspere.accounts a LEFT JOIN darkspere.subscriptions s USING (account_id) WHERE a.account_id = acct
$$;
SET timezone = 'UTC';

-- A subscription event before checkout: kept (no account yet), applied when checkout links the account.
SELECT darkspere.stripe_event(pg_temp.ev('evt_160_created', 'customer.subscription.created', 1767225600,
                                         pg_temp.sub('active', 'price_pro_160', 1769904000)));
SELECT * FROM pg_temp.state(:acct);
SELECT darkspere.stripe_event(pg_temp.ev('evt_160_checkout', 'checkout.session.completed', 1767225601,
    jsonb_build_object('id', 'cs_160', 'object', 'checkout.session', 'mode', 'subscription',
                       'client_reference_id', :'acct', 'customer', 'cus_160', 'subscription', 'sub_160')));
SELECT * FROM pg_temp.state(:acct);
SELECT stripe_customer_id FROM darkspere.accounts WHERE account_id = :acct;
-- The same event again: 'duplicate', nothing changes.
SELECT darkspere.stripe_event(pg_temp.ev('evt_160_checkout', 'checkout.session.completed', 1767225601,
    jsonb_build_object('id', 'cs_160', 'object', 'checkout.session', 'mode', 'subscription',
                       'client_reference_id', :'acct', 'customer', 'cus_160', 'subscription', 'sub_160')));

-- An update to enterprise, cancelling at period end; then an older update (to pro) arrives late: ignored as
-- state, still recorded once.
SELECT darkspere.stripe_event(pg_temp.ev('evt_160_upd2', 'customer.subscription.updated', 1767229200,
                                         pg_temp.sub('active', 'price_ent_160', 1769907600, true)));
SELECT darkspere.stripe_event(pg_temp.ev('evt_160_upd1', 'customer.subscription.updated', 1767227400,
                                         pg_temp.sub('active', 'price_pro_160', 1769905800)));
SELECT * FROM pg_temp.state(:acct);

-- Payment fails: past_due, plan kept during the grace; once past it (the failure was 8 days ago) the account is
-- held to the free plan's limits; paid: restored. An older failure after the payment changes nothing.
SELECT darkspere.stripe_event(pg_temp.ev('evt_160_fail', 'invoice.payment_failed',
    extract(epoch FROM now() - interval '1 day')::bigint, jsonb_build_object('id', 'in_160', 'object', 'invoice', 'customer', 'cus_160')));
SELECT plan, effective, status, past_due FROM pg_temp.state(:acct);
UPDATE darkspere.subscriptions SET past_due_since = now() - interval '8 days' WHERE account_id = :acct;
SELECT plan, effective, status, past_due FROM pg_temp.state(:acct);
SELECT plan, monthly_limit, reason FROM darkspere.feature_access(:acct, 'sms_inbound');
SELECT metric, included FROM darkspere.usage(:acct);
SET darkspere.payment_grace = '9d';
SELECT effective FROM pg_temp.state(:acct);
RESET darkspere.payment_grace;
SELECT darkspere.stripe_event(pg_temp.ev('evt_160_paid', 'invoice.paid', extract(epoch FROM now())::bigint,
                                         jsonb_build_object('id', 'in_160', 'object', 'invoice', 'customer', 'cus_160')));
SELECT darkspere.stripe_event(pg_temp.ev('evt_160_fail_old', 'invoice.payment_failed',
    extract(epoch FROM now() - interval '2 days')::bigint, jsonb_build_object('id', 'in_159', 'object', 'invoice', 'customer', 'cus_160')));
SELECT plan, effective, status, past_due FROM pg_temp.state(:acct);

-- Deleted: free at once.
SELECT darkspere.stripe_event(pg_temp.ev('evt_160_del', 'customer.subscription.deleted', 1767232800,
                                         pg_temp.sub('canceled', 'price_ent_160', 1769907600)));
SELECT * FROM pg_temp.state(:acct);
SELECT old_plan, new_plan, reason, event_id FROM darkspere.account_plan_history WHERE account_id = :acct ORDER BY history_id;

-- Not acted on: 'ignored', still recorded once.
SELECT darkspere.stripe_event(pg_temp.ev('evt_160_other', 'customer.created', 1767232801, '{"id": "cus_x"}'));
SELECT darkspere.stripe_event(pg_temp.ev('evt_160_pay', 'checkout.session.completed', 1767232802,
    '{"id": "cs_x", "mode": "payment", "customer": "cus_x"}'));
SELECT darkspere.stripe_event(pg_temp.ev('evt_160_strange', 'invoice.paid', 1767232803, '{"id": "in_x", "customer": "cus_unknown"}'));
SELECT event_id, type, outcome, account_id = :acct AS own FROM darkspere.stripe_events WHERE event_id LIKE 'evt_160%' ORDER BY event_id;

-- A price no plan_prices row maps: an error (Stripe retries until the operator adds it), nothing recorded.
SELECT regress.try($$SELECT darkspere.stripe_event(pg_temp.ev('evt_160_unmapped', 'customer.subscription.updated', 1767232900, pg_temp.sub('active', 'price_unknown', 1769907600)))$$);
SELECT count(*) AS recorded FROM darkspere.stripe_events WHERE event_id = 'evt_160_unmapped';

-- Bad events name the field.
SELECT regress.try($$SELECT darkspere.stripe_event(NULL)$$);
SELECT regress.try($$SELECT darkspere.stripe_event('[]')$$);
SELECT regress.try($$SELECT darkspere.stripe_event('{"type": "invoice.paid", "created": 1, "data": {"object": {}}}')$$);
SELECT regress.try($$SELECT darkspere.stripe_event('{"id": "evt_1", "created": 1, "data": {"object": {}}}')$$);
SELECT regress.try($$SELECT darkspere.stripe_event('{"id": "evt_1", "type": "x", "created": "soon", "data": {"object": {}}}')$$);
SELECT regress.try($$SELECT darkspere.stripe_event('{"id": "evt_1", "type": "x", "created": 1}')$$);
SELECT regress.try($$SELECT darkspere.stripe_event(pg_temp.ev('evt_160_bad1', 'checkout.session.completed', 1, '{"mode": "subscription", "client_reference_id": "abc", "customer": "cus_1", "subscription": "sub_1"}'))$$);
SELECT regress.try($$SELECT darkspere.stripe_event(pg_temp.ev('evt_160_bad2', 'customer.subscription.updated', 1, '{"id": "sub_1", "customer": 7}'))$$);
SELECT regress.try($$SELECT darkspere.stripe_event(pg_temp.ev('evt_160_bad3', 'customer.subscription.updated', 1, '{"id": "sub_160", "customer": "cus_160", "status": "active"}'))$$);
SELECT count(*) AS bad_events_recorded FROM darkspere.stripe_events WHERE event_id LIKE 'evt_160_bad%';

-- tick() prunes events older than 30 days.
UPDATE darkspere.stripe_events SET received_at = now() - interval '31 days' WHERE event_id = 'evt_160_other';
SELECT darkspere.tick()->'pruned_stripe_events' AS pruned;
SELECT count(*) AS left_over FROM darkspere.stripe_events WHERE event_id = 'evt_160_other';
