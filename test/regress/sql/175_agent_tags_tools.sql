-- 175_agent_tags_tools — issue #13's last parts: a number that requires an agent tag is routed only to active
-- agents carrying it, a sticky agent without it loses the session, failover and tick()'s routing of waiting
-- messages stay among the tagged agents (none free: the message waits); set_number_agent_tag validates;
-- record_agent_tools keeps a bounded, cleaned tool list; the API shows and sets tool_name; tick() prunes
-- agent_events after darkspere.agent_event_retention.
\set VERBOSITY terse

SELECT regress.finish_leftover_work() \gset

SELECT darkspere.create_account('tags', 'pro') AS acct \gset
SELECT darkspere.add_number(:acct, '+15551750001', 'AC175');
SELECT darkspere.add_number(:acct, '+15551750002', 'AC175');
SELECT agent_id AS plain FROM darkspere.register_agent(:acct, 'plain', 'https://agent.example/175/plain', 'http', 10) \gset
SELECT agent_id AS sales1 FROM darkspere.register_agent(:acct, 'sales1', 'https://agent.example/175/s1', 'mcp', 10) \gset
SELECT agent_id AS sales2 FROM darkspere.register_agent(:acct, 'sales2', 'https://agent.example/175/s2', 'mcp', 10) \gset
UPDATE darkspere.agents SET tags = '{en,sales}' WHERE agent_id IN (:sales1, :sales2);
-- The untagged agent is the router's favourite: the best score, and latency breaks ties in its favour.
UPDATE darkspere.agents SET health_score = CASE agent_id WHEN :plain THEN 100 ELSE 90 END, latency_ms = 10
 WHERE account_id = :acct;

-- Setting the tag: validated, the number must exist; NULL clears it.
SELECT regress.try($$SELECT darkspere.set_number_agent_tag('+15551750001', 'no spaces')$$) AS bad_tag;
SELECT regress.try($$SELECT darkspere.set_number_agent_tag('+15559999999', 'sales')$$) AS unknown_number;
SELECT regress.try($$SELECT darkspere.set_number_agent_tag(NULL, 'sales')$$) AS null_number;
SELECT regress.try($$UPDATE darkspere.numbers SET agent_tag = '' WHERE number = '+15551750001'$$) AS check_constraint;
SELECT darkspere.set_number_agent_tag('+15551750001', 'sales');
SELECT number, agent_tag FROM darkspere.numbers WHERE account_id = :acct ORDER BY number;

-- A message to the tagged number goes to a tagged agent; to the other number, to the favourite.
SELECT disposition, agent_id IN (:sales1, :sales2) AS tagged_agent
  FROM darkspere.receive_sms('AC175', '+15551750001', '+16661750001', 'hi', 'SM175a');
SELECT disposition, agent_id = :plain AS favourite
  FROM darkspere.receive_sms('AC175', '+15551750002', '+16661750001', 'hi', 'SM175b');
-- No tag on the number → any agent (and the favourite wins), tagged agents included.
SELECT darkspere.set_number_agent_tag('+15551750002', 'en') ;
SELECT darkspere.set_number_agent_tag('+15551750002', NULL);
SELECT agent_tag IS NULL AS cleared FROM darkspere.numbers WHERE number = '+15551750002';

-- Failover stays within the tag: the turn fails on its agent, the next try goes to the other tagged agent, and
-- once both failed it stays with a tagged one (after a backoff), never with the favourite.
SELECT job_id AS j1, attempt AS t1, agent_id AS first_agent
  FROM darkspere.jobs WHERE kind = 'agent_call' AND account_id = :acct AND message_id =
       (SELECT message_id FROM darkspere.messages WHERE message_sid = 'SM175a') \gset
UPDATE darkspere.jobs SET state = 'running', attempt = attempt + 1, lease_until = now() + interval '1 minute'
 WHERE job_id = :j1;
SELECT darkspere.fail_job(:j1, :t1 + 1, 'boom', true);
SELECT agent_id IN (:sales1, :sales2) AND agent_id <> :first_agent AS other_tagged_agent, state
  FROM darkspere.jobs WHERE job_id = :j1;
UPDATE darkspere.jobs SET state = 'running', attempt = attempt + 1, lease_until = now() + interval '1 minute'
 WHERE job_id = :j1;
SELECT darkspere.fail_job(:j1, :t1 + 2, 'boom again', true);
SELECT agent_id IN (:sales1, :sales2) AS still_tagged, state FROM darkspere.jobs WHERE job_id = :j1;
SELECT s.agent_id IN (:sales1, :sales2) AS session_stays_tagged
  FROM darkspere.sessions s JOIN darkspere.messages m ON m.session_id = s.session_id WHERE m.message_sid = 'SM175a';
SELECT regress.finish_leftover_work() \gset
-- The failures cost the tagged agents their health; healed for what follows.
UPDATE darkspere.agents SET health_score = 90, results_mask = 0, results_count = 0, consecutive_failures = 0,
       circuit = 'closed', circuit_until = NULL
 WHERE agent_id IN (:sales1, :sales2);

-- No tagged agent free (both in maintenance): the message waits, as when no agent is free at all, even though
-- the untagged agent has room; tick() does not route it to the untagged agent either.
SELECT darkspere.set_agent_status(:sales1, 'maintenance'), darkspere.set_agent_status(:sales2, 'maintenance');
SELECT disposition, agent_id FROM darkspere.receive_sms('AC175', '+15551750001', '+16661750002', 'wait', 'SM175c');
SELECT (darkspere.tick() ->> 'routed_messages')::int AS routed_without_tagged_agent;
SELECT status FROM darkspere.messages WHERE message_sid = 'SM175c';
-- A message of another session of the same account, to the untagged number, is still routed by that tick.
SELECT darkspere.set_agent_status(:plain, 'maintenance');
SELECT disposition FROM darkspere.receive_sms('AC175', '+15551750002', '+16661750003', 'plain waits', 'SM175d');
SELECT darkspere.set_agent_status(:plain, 'active');
SELECT (darkspere.tick() ->> 'routed_messages')::int AS routed_untagged_only;
SELECT message_sid, status FROM darkspere.messages WHERE message_sid IN ('SM175c', 'SM175d') ORDER BY message_sid;
-- A tagged agent is back: the waiting message goes to it.
SELECT darkspere.set_agent_status(:sales2, 'active');
SELECT (darkspere.tick() ->> 'routed_messages')::int AS routed_to_tagged;
SELECT status, agent_id = :sales2 AS to_sales2 FROM darkspere.messages WHERE message_sid = 'SM175c';
SELECT regress.finish_leftover_work() \gset

-- Sticky routing checks the tag: a session whose agent lost the tag moves at its next message.
SELECT darkspere.set_agent_status(:sales1, 'active');
UPDATE darkspere.agents SET tags = '{en}' WHERE agent_id = :sales2;
SELECT disposition, agent_id = :sales1 AS moved_to_sales1
  FROM darkspere.receive_sms('AC175', '+15551750001', '+16661750002', 'again', 'SM175e');
SELECT regress.finish_leftover_work() \gset

-- record_agent_tools: names kept, descriptions cut to 500 characters, bad entries dropped, order kept.
SELECT darkspere.record_agent_tools(:sales1, jsonb_build_array(
    jsonb_build_object('name', 'chat', 'description', repeat('d', 600), 'inputSchema', '{"type": "object"}'::jsonb),
    jsonb_build_object('name', 'weather'),
    jsonb_build_object('name', ''),
    jsonb_build_object('name', E'bad\nname'),
    jsonb_build_object('name', 42),
    '"not an object"'::jsonb)) AS stored;
SELECT jsonb_array_length(tools) AS n, tools -> 0 ->> 'name' AS first, length(tools -> 0 ->> 'description') AS desc_len,
       tools -> 0 ? 'inputSchema' AS schema_kept, tools -> 1 AS second, tools_checked_at IS NOT NULL AS checked
  FROM darkspere.agents WHERE agent_id = :sales1;
SELECT regress.try(format('SELECT darkspere.record_agent_tools(%s, %L)', :sales1, '{"tools": []}')) AS not_array;
SELECT regress.try(format('SELECT darkspere.record_agent_tools(%s, (SELECT jsonb_agg(jsonb_build_object(''name'', ''t'' || i)) FROM generate_series(1, 101) i))', :sales1)) AS too_many;
SELECT regress.try(format('SELECT darkspere.record_agent_tools(%s, jsonb_build_array(jsonb_build_object(''name'', ''x'', ''description'', repeat(''y'', 300000))))', :sales1)) AS too_big;
SELECT regress.try('SELECT darkspere.record_agent_tools(0, ''[]'')') AS unknown_agent;
SELECT darkspere.record_agent_tools(:sales2, '[]') AS empty_list;
-- The worker may store tools, a person may not (admin) and nobody else.
SELECT has_function_privilege('darkspere_worker', 'darkspere.record_agent_tools(bigint, jsonb)', 'EXECUTE') AS worker,
       has_function_privilege('darkspere_admin', 'darkspere.record_agent_tools(bigint, jsonb)', 'EXECUTE') AS admin,
       has_function_privilege('darkspere_admin', 'darkspere.set_number_agent_tag(text, text)', 'EXECUTE') AS admin_tags;

-- tool_name through the API: shown (NULL = default), tools and tools_checked_at on one agent, set, validated,
-- cleared with null.
SELECT api_key AS akey FROM darkspere.create_account_key(:acct, 'k175') \gset
SELECT http_status, response ? 'tool_name' AS has_tool_name, response -> 'tool_name' AS tool_name,
       jsonb_array_length(response -> 'tools') AS tools, response ? 'tools_checked_at' AS has_checked_at
  FROM darkspere.api_call('agents.get', :'akey', '127.0.0.1', :sales1);
SELECT http_status, response -> 'tool_name' AS tool_name
  FROM darkspere.api_call('agents.update', :'akey', '127.0.0.1', :sales1, '{"tool_name": "weather"}');
SELECT tool_name FROM darkspere.agents WHERE agent_id = :sales1;
SELECT http_status, response #>> '{error,field}' AS field
  FROM darkspere.api_call('agents.update', :'akey', '127.0.0.1', :sales1, '{"tool_name": ""}');
SELECT http_status, response #>> '{error,field}' AS field
  FROM darkspere.api_call('agents.update', :'akey', '127.0.0.1', :sales1, jsonb_build_object('tool_name', repeat('t', 129)));
SELECT http_status, response #>> '{error,field}' AS field
  FROM darkspere.api_call('agents.update', :'akey', '127.0.0.1', :sales1, '{"tool_name": 7}');
SELECT http_status, response -> 'tool_name' AS tool_name
  FROM darkspere.api_call('agents.update', :'akey', '127.0.0.1', :sales1, '{"tool_name": null}');
SELECT http_status, response -> 'agents' -> 0 ? 'tools' AS list_has_tools
  FROM darkspere.api_call('agents.list', :'akey', '127.0.0.1');
-- The agent_call payload names the tool (null: the worker's default).
SELECT column_default IS NULL AS no_default, is_nullable FROM information_schema.columns
 WHERE table_schema = 'darkspere' AND table_name = 'agents' AND column_name = 'tool_name';

-- agent_events retention: 90 days by default; older rows go, a batch per tick.
SELECT name, boot_val, unit FROM pg_settings WHERE name = 'darkspere.agent_event_retention';
INSERT INTO darkspere.agent_events (account_id, agent_id, at, actor, from_status, to_status, reason)
SELECT :acct, :plain, now() - interval '91 days' - i * interval '1 second', 'probe', 'active', 'unhealthy', 'old'
  FROM generate_series(1, 3) i;
SELECT count(*) AS events_before FROM darkspere.agent_events WHERE account_id = :acct;
SELECT (darkspere.tick() ->> 'pruned_agent_events')::int AS pruned;
SELECT count(*) AS events_after, count(*) FILTER (WHERE reason = 'old') AS old_left
  FROM darkspere.agent_events WHERE account_id = :acct;
SET darkspere.agent_event_retention = 0;
INSERT INTO darkspere.agent_events (account_id, agent_id, at, actor, from_status, to_status, reason)
VALUES (:acct, :plain, now() - interval '400 days', 'probe', 'active', 'unhealthy', 'ancient');
SELECT darkspere.tick() ? 'pruned_agent_events' AS pruned_when_off;
RESET darkspere.agent_event_retention;
SELECT (darkspere.tick() ->> 'pruned_agent_events')::int AS pruned_after_reset;
SELECT regress.finish_leftover_work() \gset
