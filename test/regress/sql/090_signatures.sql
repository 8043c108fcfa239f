-- 090_signatures — webhook signatures: every published Twilio vector (docs/protocols.md#twilio-test-vectors) and Stripe case
-- (docs/protocols.md#stripe-webhook-signatures).
-- Errors are printed as "SQLSTATE: message" by regress.try (000_setup.sql).
\set VERBOSITY terse

-- Twilio: auth token 12345, base URL B, parameters P.
\set B 'https://mycompany.com/myapp.php?foo=1&bar=2'
\set P '{"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234", "From": "+14158675309", "To": "+18005551212"}'
SELECT v.id, darkspere.twilio_signature('12345', v.url, v.params::jsonb) AS signature, v.expected,
       darkspere.twilio_signature('12345', v.url, v.params::jsonb) = v.expected AS ok
  FROM (VALUES
    ('T1',  :'B', :'P', 'RSOYDt4T1cUTdK1PDd93/VVr8B8='),
    ('T2',  'https://mycompany.com:443/myapp.php?foo=1&bar=2', :'P', 'kvajT1Ptam85bY51eRf/AJRuM3w='),
    ('T3',  'http://mycompany.com:80/myapp.php?foo=1&bar=2', :'P', '0ZXoZLH/DfblKGATFgpif+LLRf4='),
    ('T4',  'http://mycompany.com:1234/myapp.php?foo=1&bar=2', :'P', 'Zmvh+3yNM1Phv2jhDCwEM3q5ebU='),
    ('T5',  :'B', '{"Sid": "CA123", "SidAccount": "AC123", "Digits": ["5678", "1234", "1234"]}', 'IK+Dwps556ElfBT0I3Rgjkr1wJU='),
    ('T6a', :'B', '{"MessagingBinding.Address": ["+1415xxxxxxx", "+1325xxxxxxx"]}', '83O6e2vORAoJHUNzJjDWN1jz+BA='),
    ('T6b', :'B', '{"MessagingBinding.Address": ["+1325xxxxxxx", "+1415xxxxxxx"]}', '83O6e2vORAoJHUNzJjDWN1jz+BA='),
    ('T7',  'https://mycompany.com/myapp.php?foo=1&bar=2&Body=It%27s+amazing', :'P', 'TfZzewPq8wqrGlMfyAud8+/IvJ0='),
    ('T7q', 'https://mycompany.com/myapp.php?foo=1&bar=2&Body=It''s+amazing', :'P', 'dsq4Ehbj6cs+KdTkpF5sSSplOWw='),
    ('T8',  'https://user:pass@mycompany.com/myapp.php?foo=1&bar=2', :'P', 'CukzLTc1tT5dXEDIHm/tKBanW10='),
    ('T9',  'https://user:pass@mycompany.com:443/myapp.php?foo=1&bar=2', :'P', 'ZQFR1PTIZXF2MXB8ZnKCvnnA+rI='),
    ('T10', 'https://user@mycompany.com/myapp.php?foo=1&bar=2', :'P', '2YRLlVAflCqxaNicjMpJcSTgzSs='),
    ('http, no port', 'http://mycompany.com/myapp.php?foo=1&bar=2', :'P', 'OyGYPqTF6ztdbRNCvuQO/oPvqQ4='),
    -- JSON-body vectors: the body's SHA-256 is in the URL and no form parameters are signed.
    ('J1',  :'B' || '&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620', '{}', 'a9nBmqA0ju/hNViExpshrM61xv4='),
    ('J2',  'https://mycompany.com/myapp.php?bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620', '{}', 'y77kIzt2vzLz71DgmJGsen2scGs='),
    ('J3',  'https://mycompany.com:443/myapp.php?foo=1&bar=2&bodySHA256=44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', '{}', 'Ldidvp12m26NI7eqEvxnEpkd9Hc='),
    ('J3, no port', 'https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', '{}', 'rw/jVviOgicj2+kHZULvebnA4ag='),
    -- Derived SMS vector: URL-decoded values, UTF-8 body (U+2713, U+1F600).
    ('SMS', 'https://example.com/sms/inbound',
     '{"AccountSid": "AC00000000000000000000000000000000", "ApiVersion": "2010-04-01", "Body": "Hello, world! ✓ 😀",
       "From": "+14155550100", "MessageSid": "SM11111111111111111111111111111111", "NumMedia": "0", "NumSegments": "1",
       "SmsMessageSid": "SM11111111111111111111111111111111", "SmsSid": "SM11111111111111111111111111111111",
       "SmsStatus": "received", "To": "+14155550199"}', '1a3Rnwg3jZvCkd4uQVa+vvCfPz0=')
  ) v(id, url, params, expected);

-- How a jsonb value becomes a form value (pinned when the jsonb walk moved from SQL to C): a string as itself,
-- a number, boolean or object as its JSON text, null as ''; an array one value per element, an empty array or
-- a null element the array's JSON text. A repeated key keeps its last value; keys sort by bytes.
SELECT v.id, darkspere.twilio_signature('12345', 'https://x.example/sms', v.params::jsonb) AS signature
  FROM (VALUES
    ('empty', '{}'),
    ('repeated key', '{"a": "1", "a": "2"}'),
    ('last value of a repeated key', '{"a": "2"}'),
    ('numbers', '{"a": 1, "b": 2.50, "c": 1e3}'),
    ('numbers as strings', '{"a": "1", "b": "2.50", "c": "1000"}'),
    ('booleans', '{"a": true, "b": false}'),
    ('null', '{"a": null}'),
    ('empty string', '{"a": ""}'),
    ('object', '{"a": {"x": [1, "y"]}}'),
    ('empty array', '{"a": []}'),
    ('array with null', '{"a": ["x", null]}'),
    ('array, mixed', '{"a": [1, true, {"k": "v"}, [2, 3], "s"]}'),
    ('array, repeated values', '{"a": ["2", "1", "2"]}'),
    ('key byte order', '{"b": "1", "B": "2", "aa": "3", "a": "4", "é": "5", "Z": "6", "_": "7"}'),
    ('escapes', '{"Body": "✓ 😀 \"q\" \\ \n"}')
  ) v(id, params);

-- The same rules, each as the form value it stands for.
\set U 'https://x.example/sms'
SELECT darkspere.twilio_signature('1', :'U', '{"a": []}') = darkspere.twilio_signature('1', :'U', '{"a": "[]"}') AS empty_array_is_its_text,
       darkspere.twilio_signature('1', :'U', '{"a": ["x", null]}') = darkspere.twilio_signature('1', :'U', '{"a": ["x", "[\"x\", null]"]}') AS null_element_is_the_array_text,
       darkspere.twilio_signature('1', :'U', '{"a": {"x": [1, "y"]}}') = darkspere.twilio_signature('1', :'U', '{"a": "{\"x\": [1, \"y\"]}"}') AS object_is_its_text,
       darkspere.twilio_signature('1', :'U', '{"a": [2.50, false]}') = darkspere.twilio_signature('1', :'U', '{"a": ["2.50", "false"]}') AS scalar_elements_are_their_text;

-- Validation: the URL as received, with or without its default port.
SELECT v.case_name, darkspere.twilio_signature_valid('12345', v.url, :'P'::jsonb, v.signature) AS valid
  FROM (VALUES
    ('non-default port removed → T1', 'https://mycompany.com:1234/myapp.php?foo=1&bar=2', 'RSOYDt4T1cUTdK1PDd93/VVr8B8='),
    ('http non-default port kept → T4', 'http://mycompany.com:1234/myapp.php?foo=1&bar=2', 'Zmvh+3yNM1Phv2jhDCwEM3q5ebU='),
    (':443 added → T2', 'https://mycompany.com/myapp.php?foo=1&bar=2', 'kvajT1Ptam85bY51eRf/AJRuM3w='),
    (':80 added → T3', 'http://mycompany.com/myapp.php?foo=1&bar=2', '0ZXoZLH/DfblKGATFgpif+LLRf4='),
    (':443 added, userinfo kept → T9', 'https://user:pass@mycompany.com/myapp.php?foo=1&bar=2', 'ZQFR1PTIZXF2MXB8ZnKCvnnA+rI='),
    ('as signed → T1', 'https://mycompany.com/myapp.php?foo=1&bar=2', 'RSOYDt4T1cUTdK1PDd93/VVr8B8='),
    ('T2 with one character changed', 'https://mycompany.com/myapp.php?foo=1&bar=2', 'kvajT1Ptam85bY51eRf/AJRuM3W='),
    ('empty header', 'https://mycompany.com/myapp.php?foo=1&bar=2', ''),
    ('unexpected query parameter', 'https://mycompany.com/myapp.php?foo=1&bar=2&somethingUnexpected=true', 'RSOYDt4T1cUTdK1PDd93/VVr8B8=')
  ) v(case_name, url, signature);
SELECT darkspere.twilio_signature_valid('12345', :'B', :'P'::jsonb, NULL) AS header_missing;
SELECT darkspere.twilio_signature_valid(NULL, :'B', :'P'::jsonb, 'RSOYDt4T1cUTdK1PDd93/VVr8B8=') AS token_missing;
SELECT darkspere.twilio_signature_valid('54321', :'B', :'P'::jsonb, 'RSOYDt4T1cUTdK1PDd93/VVr8B8=') AS wrong_token;
SELECT darkspere.twilio_signature_valid('12345', :'B', (:'P'::jsonb) || '{"Digits": "1235"}', 'RSOYDt4T1cUTdK1PDd93/VVr8B8=') AS tampered_param;
SELECT darkspere.twilio_signature_valid('12345', :'B', (:'P'::jsonb) - 'To', 'RSOYDt4T1cUTdK1PDd93/VVr8B8=') AS dropped_param;
SELECT darkspere.twilio_signature_valid('12345', 'https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
                                        '{}', 'Ldidvp12m26NI7eqEvxnEpkd9Hc=') AS j3_received_without_port;
SELECT regress.try($$SELECT darkspere.twilio_signature('12345', 'https://x/', '[]')$$) AS params_not_an_object;
SELECT regress.try($$SELECT darkspere.twilio_signature_valid('12345', 'https://x/', '"x"', 'abc')$$) AS valid_params_not_an_object;
SELECT regress.try($$SELECT darkspere.twilio_signature('', 'https://x/', '{}')$$) AS empty_token;
SELECT regress.try($$SELECT darkspere.twilio_signature(NULL, 'https://x/', '{}')$$) AS null_token;
SELECT regress.try($$SELECT darkspere.twilio_signature('12345', NULL, '{}')$$) AS null_url;
SELECT regress.try($$SELECT darkspere.twilio_signature('12345', 'https://x/', NULL)$$) AS null_params;

-- Stripe S1 (stripe-dotnet): secret webhook_secret, t = 1533204620, the 484-byte payload below.
SELECT E'{\n  "id": "evt_123",\n  "object": "event",\n  "account": "acct_123",\n  "api_version": "2017-05-25",\n  "created": 1533204620,\n  "data": {\n    "object": {\n      "id": "cus_123",\n      "object": "customer",\n      "created": 123456789,\n      "email": "test@stripe.com",\n      "livemode": false,\n      "metadata": {}\n    }\n  },\n  "livemode": false,\n  "pending_webhooks": 1,\n  "request": {\n    "id": "req_123",\n    "idempotency_key": "idempotency-key-123"\n  },\n  "type": "customer.created"\n}\n' AS s1 \gset
SELECT octet_length(:'s1') AS bytes, encode(sha256(convert_to(:'s1', 'UTF8')), 'hex') = '98cc89412549ca7faf118fca984763bdb6f81e13d1ce8c528dbbb5be602ec1be' AS sha256_matches;
\set H1 't=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef'
\set GOOD1700 '17bebb6cb3b71bd0e1942e73dfa69ef97385869aed80910559a1bb391092b335'
SELECT v.case_name, darkspere.stripe_signature_valid(v.secret, v.payload, v.header, 300, to_timestamp(v.at)) AS valid
  FROM (VALUES
    ('header above, now = t + 100', 'webhook_secret', :'s1', :'H1', 1533204720),
    ('header above, now = t', 'webhook_secret', :'s1', :'H1', 1533204620),
    ('header above, now = t + 300 (edge)', 'webhook_secret', :'s1', :'H1', 1533204920),
    ('header above, now = t + 400 (too old)', 'webhook_secret', :'s1', :'H1', 1533205020),
    ('header above, now = t - 400 (future)', 'webhook_secret', :'s1', :'H1', 1533204220),
    ('payload with extra bytes', 'webhook_secret', :'s1' || ' ', :'H1', 1533204720),
    ('payload without the trailing newline', 'webhook_secret', left(:'s1', -1), :'H1', 1533204720),
    ('good v1 then bad v1', 'webhook_secret', :'s1', 't=1700000000,v1=' || :'GOOD1700' || ',v1=deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef', 1700000010),
    ('bad v1 then good v1', 'webhook_secret', :'s1', 't=1700000000,v1=deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef,v1=' || :'GOOD1700', 1700000010),
    ('only v0', 'webhook_secret', :'s1', 't=1533204620,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef', 1533204720),
    ('malformed: t=,v1=…', 'webhook_secret', :'s1', 't=,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7', 1533204720),
    ('malformed: t,v1=,v0=', 'webhook_secret', :'s1', 't,v1=,v0=', 1533204720),
    ('malformed: ,,', 'webhook_secret', :'s1', ',,', 1533204720),
    ('malformed: t', 'webhook_secret', :'s1', 't', 1533204720),
    ('empty header', 'webhook_secret', :'s1', '', 1533204720),
    ('empty secret', '', :'s1', :'H1', 1533204720),
    ('wrong secret', 'whsec_webhook_secret', :'s1', :'H1', 1533204720)
  ) v(case_name, secret, payload, header, at);
-- Stripe S2 (derived): whsec_ secret used whole, 125-byte payload without a trailing newline.
SELECT E'{\n  "id": "evt_test_webhook",\n  "object": "event",\n  "data": { "object": { "id": "rdr_123", "object": "terminal.reader" } }\n}' AS s2 \gset
SELECT octet_length(:'s2') AS bytes, encode(sha256(convert_to(:'s2', 'UTF8')), 'hex') = '3b538d7c82820105fcdc02c25620eba837c401a7d6256f877fc0c4875a73bc93' AS sha256_matches;
\set H2 't=1700000000,v1=3bfab77baf5f7b6991a46c9b53b6547d7afc56148b10468fcad9f35c1992ffbd'
SELECT darkspere.stripe_signature_valid('whsec_test_secret', :'s2', :'H2', 300, to_timestamp(1700000000)) AS s2_valid;
SELECT darkspere.stripe_signature_valid('test_secret', :'s2', :'H2', 300, to_timestamp(1700000000)) AS s2_secret_without_prefix;
SELECT darkspere.stripe_signature_valid('whsec_test_secret', :'s2' || E'\n', :'H2', 300, to_timestamp(1700000000)) AS s2_with_newline;
-- tolerance is an argument; NULL secret, payload or header are simply invalid.
SELECT darkspere.stripe_signature_valid('whsec_test_secret', :'s2', :'H2', 0, to_timestamp(1700000000)) AS zero_tolerance_same_second;
SELECT darkspere.stripe_signature_valid('whsec_test_secret', :'s2', :'H2', 0, to_timestamp(1700000001)) AS zero_tolerance_one_second_late;
SELECT darkspere.stripe_signature_valid('whsec_test_secret', :'s2', :'H2', 3600, to_timestamp(1700003000)) AS one_hour_tolerance;
SELECT darkspere.stripe_signature_valid('whsec_test_secret', :'s2', :'H2') AS at_defaults_to_now;
SELECT darkspere.stripe_signature_valid(NULL, :'s2', :'H2', 300, to_timestamp(1700000000)) AS null_secret;
SELECT darkspere.stripe_signature_valid('whsec_test_secret', NULL, :'H2', 300, to_timestamp(1700000000)) AS null_payload;
SELECT darkspere.stripe_signature_valid('whsec_test_secret', :'s2', NULL, 300, to_timestamp(1700000000)) AS null_header;
SELECT regress.try($$SELECT darkspere.stripe_signature_valid('s', 'p', 't=1,v1=00', -1, now())$$) AS negative_tolerance;
SELECT regress.try($$SELECT darkspere.stripe_signature_valid('s', 'p', 't=1,v1=00', NULL, now())$$) AS null_tolerance;
SELECT regress.try($$SELECT darkspere.stripe_signature_valid('s', 'p', 't=1,v1=00', 300, NULL)$$) AS null_at;
