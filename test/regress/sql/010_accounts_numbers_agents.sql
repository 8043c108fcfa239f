-- 010_accounts_numbers_agents — tenants and what they own: accounts, service numbers, agents, plan limits.
-- Errors are printed as "SQLSTATE: message" by regress.try (000_setup.sql).
\set VERBOSITY terse

-- create_account: name required, plan must be a row of darkspere.plans, 'free' by default.
SELECT darkspere.create_account('acme-free') AS free_acct \gset
SELECT darkspere.create_account('acme-pro', 'pro', 'Acme help: reply STOP to stop') AS pro_acct \gset
SELECT darkspere.create_account('acme-ent', 'enterprise') AS ent_acct \gset
SELECT name, plan, help_text FROM darkspere.accounts WHERE account_id IN (:free_acct, :pro_acct, :ent_acct) ORDER BY account_id;
SELECT regress.try($$SELECT darkspere.create_account('x', 'gold')$$) AS unknown_plan;
SELECT regress.try($$SELECT darkspere.create_account('x', NULL)$$) AS null_plan;
SELECT regress.try($$SELECT darkspere.create_account(NULL)$$) AS null_name;
SELECT regress.try($$SELECT darkspere.create_account('')$$) AS empty_name;
SELECT regress.try($$SELECT darkspere.create_account('x', 'Pro')$$) AS plan_is_case_sensitive;
SELECT count(*) AS accounts_named_x FROM darkspere.accounts WHERE name = 'x';

-- add_number: E.164 only (plus sign, 2 to 15 digits), one account per number, plan limit on numbers.
SELECT darkspere.add_number(:free_acct, '+15550100001', 'AC010');
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15550100002', 'AC010')$$, :free_acct)) AS free_plan_second_number;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15550100001', 'AC010')$$, :pro_acct)) AS number_owned_elsewhere;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15550100001', 'AC010')$$, :free_acct)) AS number_added_twice;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '15550100003', 'AC010')$$, :pro_acct)) AS missing_plus;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+1 555 010 0003', 'AC010')$$, :pro_acct)) AS spaces;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+1555010000312345', 'AC010')$$, :pro_acct)) AS sixteen_digits;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+1', 'AC010')$$, :pro_acct)) AS one_digit;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+0155501000', 'AC010')$$, :pro_acct)) AS leading_zero;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+1555abc0003', 'AC010')$$, :pro_acct)) AS letters;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '', 'AC010')$$, :pro_acct)) AS empty_number;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, NULL, 'AC010')$$, :pro_acct)) AS null_number;
SELECT regress.try($$SELECT darkspere.add_number(NULL, '+15550100003', 'AC010')$$) AS null_account;
SELECT regress.try($$SELECT darkspere.add_number(-1, '+15550100003', 'AC010')$$) AS unknown_account;
-- provider_account, the Twilio AccountSid owning the number, is required: only its webhooks reach the number.
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15550100003', '')$$, :pro_acct)) AS empty_provider_account;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15550100003')$$, :pro_acct)) AS provider_account_omitted;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15550100003', NULL)$$, :pro_acct)) AS null_provider_account;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15550100003', 'SK0123456789abcdef0123456789abcdef')$$, :pro_acct)) AS not_an_account_sid;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15550100003', 'AC')$$, :pro_acct)) AS prefix_only;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15550100003', ' AC010')$$, :pro_acct)) AS leading_space;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15550100003', 'AC0123456789abcdef0123456789abcdef0')$$, :pro_acct)) AS thirty_three_characters_after_ac;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15550100003', 'AC01234-6789')$$, :pro_acct)) AS punctuation;
SELECT count(*) AS numbers_stored_for_bad_sids FROM darkspere.numbers WHERE number = '+15550100003';
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15550100003', 'AC0123456789abcdef0123456789ABCDEF')$$, :pro_acct)) AS real_sid_shape;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+44207946000', 'AC010')$$, :pro_acct)) AS pro_second_number;
SELECT number, provider_account, account_id = :pro_acct AS is_pro FROM darkspere.numbers
 WHERE account_id IN (:free_acct, :pro_acct) ORDER BY number;
-- pro allows 10 numbers: eight more fit, the eleventh does not.
SELECT count(*) FILTER (WHERE regress.try(format($$SELECT darkspere.add_number(%s, '+155501001%s', 'AC010')$$, :pro_acct, lpad(i::text, 2, '0'))) = 'ok') AS added
  FROM generate_series(10, 17) i;
SELECT regress.try(format($$SELECT darkspere.add_number(%s, '+15550100199', 'AC010')$$, :pro_acct)) AS pro_eleventh_number;
-- enterprise is unlimited.
SELECT count(*) FILTER (WHERE regress.try(format($$SELECT darkspere.add_number(%s, '+155501002%s', 'AC010')$$, :ent_acct, lpad(i::text, 2, '0'))) = 'ok') AS added
  FROM generate_series(1, 12) i;

-- register_agent: http(s) endpoint, protocol http | mcp, positive capacity, unique name per account, plan limit.
SELECT agent_id AS free_agent, api_key AS free_key FROM darkspere.register_agent(:free_acct, 'bot', 'https://agent.example/chat') \gset
SELECT :'free_key' ~ '^dsk_[0-9a-f]{64}$' AS key_shape;
SELECT api_key_hash = sha256(convert_to(:'free_key', 'UTF8')) AS stored_as_sha256,
       position(convert_to(:'free_key', 'UTF8') IN api_key_hash) = 0 AS key_not_stored,
       name, endpoint, protocol, capacity, status, circuit, health_score
  FROM darkspere.agents WHERE agent_id = :free_agent;
SELECT count(*) AS load_shards FROM darkspere.agent_load WHERE agent_id = :free_agent;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'bot2', 'https://agent.example/2')$$, :free_acct)) AS free_plan_second_agent;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'bot', 'https://agent.example/x')$$, :pro_acct)) AS same_name_other_account;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'bot', 'https://agent.example/y')$$, :pro_acct)) AS duplicate_name;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'm', 'http://10.0.0.1:8080/mcp', 'mcp', 3)$$, :pro_acct)) AS mcp_agent;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'g', 'ftp://agent.example/')$$, :pro_acct)) AS ftp_endpoint;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'g', 'agent.example/chat')$$, :pro_acct)) AS no_scheme;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'g', 'https://')$$, :pro_acct)) AS scheme_only;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'g', '')$$, :pro_acct)) AS empty_endpoint;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'g', NULL)$$, :pro_acct)) AS null_endpoint;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'g', 'https://a/', 'grpc')$$, :pro_acct)) AS unknown_protocol;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'g', 'https://a/', 'HTTP')$$, :pro_acct)) AS protocol_is_case_sensitive;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'g', 'https://a/', NULL)$$, :pro_acct)) AS null_protocol;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'g', 'https://a/', 'http', 0)$$, :pro_acct)) AS zero_capacity;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'g', 'https://a/', 'http', -5)$$, :pro_acct)) AS negative_capacity;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'g', 'https://a/', 'http', NULL)$$, :pro_acct)) AS null_capacity;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, '', 'https://a/')$$, :pro_acct)) AS empty_name;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, NULL, 'https://a/')$$, :pro_acct)) AS null_name;
SELECT regress.try($$SELECT darkspere.register_agent(-1, 'g', 'https://a/')$$) AS unknown_account;
SELECT regress.try($$SELECT darkspere.register_agent(NULL, 'g', 'https://a/')$$) AS null_account;
SELECT name, endpoint, protocol, capacity FROM darkspere.agents WHERE account_id = :pro_acct ORDER BY name;
-- pro allows 5 agents (bot, m + three more); a sixth is refused until one is disabled.
SELECT count(*) FILTER (WHERE regress.try(format($$SELECT darkspere.register_agent(%s, 'extra%s', 'https://a/')$$, :pro_acct, i)) = 'ok') AS added
  FROM generate_series(1, 3) i;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'sixth', 'https://a/')$$, :pro_acct)) AS pro_sixth_agent;

-- set_agent_status: active | maintenance | disabled; a disabled agent frees a plan slot.
SELECT agent_id AS extra1 FROM darkspere.agents WHERE account_id = :pro_acct AND name = 'extra1' \gset
SELECT regress.try(format($$SELECT darkspere.set_agent_status(%s, 'maintenance')$$, :extra1)) AS maintenance;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'sixth', 'https://a/')$$, :pro_acct)) AS maintenance_still_counts;
SELECT regress.try(format($$SELECT darkspere.set_agent_status(%s, 'disabled')$$, :extra1)) AS disabled;
SELECT regress.try(format($$SELECT darkspere.register_agent(%s, 'sixth', 'https://a/')$$, :pro_acct)) AS disabled_frees_a_slot;
SELECT regress.try(format($$SELECT darkspere.set_agent_status(%s, 'active')$$, :extra1)) AS reactivated_over_limit;
SELECT regress.try(format($$SELECT darkspere.set_agent_status(%s, 'paused')$$, :extra1)) AS unknown_status;
SELECT regress.try(format($$SELECT darkspere.set_agent_status(%s, 'ACTIVE')$$, :extra1)) AS status_is_case_sensitive;
SELECT regress.try(format($$SELECT darkspere.set_agent_status(%s, NULL)$$, :extra1)) AS null_status;
SELECT regress.try($$SELECT darkspere.set_agent_status(NULL, 'active')$$) AS null_agent;
SELECT regress.try($$SELECT darkspere.set_agent_status(-1, 'active')$$) AS unknown_agent;
SELECT name, status FROM darkspere.agents WHERE account_id = :pro_acct ORDER BY name;
