-- 200_billing_api — /api/billing/checkout|portal|cancel in SQL (issue #15): api_call validates the body (422
-- naming the field), refuses what cannot be asked of Stripe (409) and otherwise answers status 0 with the Stripe
-- request to make (path, form, an idempotency key derived from the request); billing_result maps Stripe's answer
-- (url, subscription state, 402/409/502 with Stripe's message) and records each call in billing_calls.
\set VERBOSITY terse

SELECT regress.finish_leftover_work() \gset
SET timezone = 'UTC';
-- 160 mapped another price to pro: this one is the price checkout sells.
INSERT INTO darkspere.plan_prices (price_id, plan, checkout) VALUES ('price_pro_175', 'pro', true);
SELECT darkspere.create_account('billing-175', 'free') AS acct \gset
SELECT api_key AS key FROM darkspere.create_account_key(:acct, 'billing') \gset

-- Validation: every field known and valid, the required ones present.
SELECT http_status, response FROM darkspere.api_call('billing.checkout', :'key', '192.0.2.75', NULL,
    '{"plan": "pro", "success_url": "https://a.example/ok"}');
SELECT http_status, response FROM darkspere.api_call('billing.checkout', :'key', '192.0.2.75', NULL,
    '{"plan": "gold", "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"}');
SELECT http_status, response FROM darkspere.api_call('billing.checkout', :'key', '192.0.2.75', NULL,
    '{"plan": "free", "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"}');
SELECT http_status, response FROM darkspere.api_call('billing.checkout', :'key', '192.0.2.75', NULL,
    '{"plan": "pro", "success_url": "ftp://a.example/", "cancel_url": "https://a.example/no"}');
SELECT http_status, response FROM darkspere.api_call('billing.cancel', :'key', '192.0.2.75', NULL,
    '{"at_period_end": "yes"}');
SELECT http_status, response FROM darkspere.api_call('billing.portal', :'key', '192.0.2.75', NULL, '[1]');
-- Nothing to open a portal for, nothing to cancel.
SELECT http_status, response #>> '{error,code}' FROM darkspere.api_call('billing.portal', :'key', '192.0.2.75',
    NULL, '{"return_url": "https://a.example/"}');
SELECT http_status, response #>> '{error,code}' FROM darkspere.api_call('billing.cancel', :'key', '192.0.2.75',
    NULL, '{"at_period_end": true}');

-- Checkout: status 0 and the request; the same request again has the same idempotency key.
SELECT http_status, replace((response #> '{stripe,form}')::text, '"' || :acct || '"', '"<account>"') AS form,
       response #>> '{stripe,path}' AS path,
       response -> 'account_id' = to_jsonb(:acct) AS for_account,
       response #>> '{stripe,idempotency_key}' ~ ('^darkspere-checkout-' || :acct || '-[0-9a-f]{40}$') AS key_shape
  FROM darkspere.api_call('billing.checkout', :'key', '192.0.2.75', NULL,
       '{"plan": "pro", "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"}');
SELECT count(DISTINCT response #>> '{stripe,idempotency_key}') AS keys
  FROM (SELECT * FROM darkspere.api_call('billing.checkout', :'key', '192.0.2.75', NULL,
            '{"plan": "pro", "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"}')
        UNION ALL
        SELECT * FROM darkspere.api_call('billing.checkout', :'key', '192.0.2.75', NULL,
            '{"cancel_url": "https://a.example/no", "success_url": "https://a.example/ok", "plan": "pro"}')) c;
-- Several prices for pro: without a mark none is chosen; the one marked checkout is bought.
INSERT INTO darkspere.plan_prices (price_id, plan) VALUES ('price_pro_175_new', 'pro');
UPDATE darkspere.plan_prices SET checkout = false WHERE plan = 'pro';
SELECT http_status, response #>> '{error,message}' FROM darkspere.api_call('billing.checkout', :'key',
    '192.0.2.75', NULL, '{"plan": "pro", "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"}');
UPDATE darkspere.plan_prices SET checkout = true WHERE price_id = 'price_pro_175_new';
SELECT response #> '{stripe,form,1}' FROM darkspere.api_call('billing.checkout', :'key', '192.0.2.75', NULL,
    '{"plan": "pro", "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"}');

-- Stripe's answers.
SELECT * FROM darkspere.billing_result(:acct, 'billing.checkout', '{"idempotency_key": "k1"}', 200,
    '{"id": "cs_test_1", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_1"}');
SELECT * FROM darkspere.billing_result(:acct, 'billing.checkout', '{"idempotency_key": "k2"}', 200, '{"id": "cs_x"}');
SELECT * FROM darkspere.billing_result(:acct, 'billing.portal', '{"idempotency_key": "k3"}', 402,
    '{"error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}}');
SELECT * FROM darkspere.billing_result(:acct, 'billing.portal', '{"idempotency_key": "k4"}', 400,
    '{"error": {"type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same parameters"}}');
SELECT * FROM darkspere.billing_result(:acct, 'billing.portal', '{"idempotency_key": "k5"}', 401,
    '{"error": {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****abcd"}}');
SELECT * FROM darkspere.billing_result(:acct, 'billing.portal', '{"idempotency_key": "k6"}', 503, '<html>busy</html>');
SELECT * FROM darkspere.billing_result(:acct, 'billing.portal', '{"idempotency_key": "k7"}', 0, 'timeout');
SELECT route, idempotency_key, stripe_status, stripe_object, http_status, error
  FROM darkspere.billing_calls WHERE account_id = :acct ORDER BY call_id;

-- Cancel: the subscription Stripe answers with is applied at once.
INSERT INTO darkspere.subscriptions (account_id, stripe_customer_id, stripe_subscription_id, status, plan)
VALUES (:acct, 'cus_175', 'sub_175', 'active', 'pro');
UPDATE darkspere.accounts SET plan = 'pro', stripe_customer_id = 'cus_175' WHERE account_id = :acct;
SELECT http_status, (response -> 'stripe') - 'idempotency_key'
  FROM darkspere.api_call('billing.cancel', :'key', '192.0.2.75', NULL, '{"at_period_end": false}');
SELECT http_status, (response -> 'stripe') - 'idempotency_key'
  FROM darkspere.api_call('billing.portal', :'key', '192.0.2.75', NULL, '{"return_url": "https://a.example/"}');
SELECT http_status, response #>> '{error,code}' FROM darkspere.api_call('billing.checkout', :'key', '192.0.2.75',
    NULL, '{"plan": "pro", "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"}');
SELECT http_status, response - 'current_period_end'
  FROM darkspere.billing_result(:acct, 'billing.cancel', '{"idempotency_key": "k8"}', 200,
    '{"id": "sub_175", "object": "subscription", "customer": "cus_175", "status": "canceled",
      "cancel_at_period_end": false, "items": {"object": "list", "data": [{"id": "si_175",
      "price": {"id": "price_pro_175"}, "current_period_end": 1900000000}]}}');
SELECT plan FROM darkspere.accounts WHERE account_id = :acct;
SELECT old_plan, new_plan, reason FROM darkspere.account_plan_history WHERE account_id = :acct;

-- A route or request billing does not know is refused.
SELECT darkspere.billing_prepare(:acct, 'billing.refund', '{}');
SELECT darkspere.billing_result(:acct, 'billing.checkout', '{}', 200, '{}');
