-- sql/darkspere--0.1.0--0.2.0.sql — update script from 0.1.0 to 0.2.0 (ALTER EXTENSION darkspere UPDATE).
--
-- darkspere--0.1.0.sql is frozen: it is what 0.1.0 databases were created with. Every schema change since then is
-- written here, once. A fresh CREATE EXTENSION of 0.2.0 runs 0.1.0 and then this script (PostgreSQL follows the
-- update path when a version has no install script of its own), so a new database and an updated one are built
-- by the same statements; test/upgrade/run checks that they end up identical and that data survive.
--
-- Rules for this file (docs/upgrading.md):
--   * append; never edit darkspere--0.1.0.sql;
--   * new columns go at the end of their table (ALTER TABLE … ADD COLUMN), with a default that suits old rows;
--   * functions change with CREATE OR REPLACE FUNCTION (or DROP + CREATE when the signature changes);
--   * a statement must work on a 0.1.0 database holding data, not only on an empty one.
\echo Use "ALTER EXTENSION darkspere UPDATE TO '0.2.0'" to load this file. \quit

------------------------------------------------------------------------------------------------------------------
-- Tenant isolation (issue #10, items 12–14)
------------------------------------------------------------------------------------------------------------------

-- Item 12: every service number names the Twilio AccountSid that owns it. In 0.1.0 a number without one accepted
-- webhooks signed by any configured AccountSid, so another tenant's Twilio account could inject messages, forge
-- opt-outs and spend quota on it. From 0.2.0 add_number requires provider_account (an AccountSid: "AC" and up
-- to 32 letters or digits), receive_sms, receive_sms_leased and receive_sms_batch require it for every message
-- and a number answers only to its own AccountSid.
--
-- No AccountSid can be guessed for an existing number without one, and such a number must not be left open or
-- silently shut: the update stops, naming the numbers, until the operator sets them; nothing is changed before.
DO $$
DECLARE
    missing bigint;
    listed text;
BEGIN
    SELECT count(*), string_agg(number, ', ' ORDER BY number) FILTER (WHERE rank <= 20)
      INTO missing, listed
      FROM (SELECT number, row_number() OVER (ORDER BY number) AS rank
              FROM darkspere.numbers WHERE provider_account IS NULL) n;
    IF missing > 0 THEN
        RAISE EXCEPTION 'darkspere 0.2.0 requires every service number to name its Twilio AccountSid; '
                        '% number(s) have none: %', missing, listed || CASE WHEN missing > 20 THEN ', …' ELSE '' END
            USING ERRCODE = 'not_null_violation',
                  HINT = 'Set each with UPDATE darkspere.numbers SET provider_account = ''AC…'' '
                         'WHERE number = ''+…'', '
                         'then run ALTER EXTENSION darkspere UPDATE again. '
                         'SELECT number FROM darkspere.numbers WHERE provider_account IS NULL lists them.';
    END IF;
END
$$;
ALTER TABLE darkspere.numbers ALTER COLUMN provider_account SET NOT NULL;

-- Item 13: per-phone rate limits are per tenant. In 0.1.0 the 'phone' rule (and 'phone_out') counted the bare
-- phone across every tenant, so one tenant forging 61 messages "from" a phone blocked that phone with every
-- tenant for 5 minutes. From 0.2.0 both count "<account_id>:<phone>"; one higher rule, 'phone_ceiling', still
-- counts the bare phone across tenants (a message the tenant's rule refuses is not counted by the ceiling, so
-- one tenant alone cannot push a phone over it).
-- Item 14: replies to STOP / START / HELP are throttled by 'keyword_reply': one per account, phone and keyword
-- per window (the rest are stored and consent recorded, without a reply). block_s = 0: refused until the
-- window ends, nothing longer.
INSERT INTO darkspere.rate_limit_rules VALUES
    ('phone_ceiling', 600,  60, 300, true),   -- inbound SMS per end-user phone, all tenants together
    ('keyword_reply',   1, 600,   0, true);   -- keyword replies per account, phone and keyword

-- A 0.1.0 override of 'phone' names a bare phone and limited it across tenants: that is the ceiling's subject
-- now, so it moves there and keeps its effect. (To let a phone past the per-tenant rule, add an override of
-- 'phone' for "<account_id>:<phone>".) An override of 'phone_out' for a bare phone no longer matches anything
-- and cannot be attributed to one tenant: it is kept, and the update says so.
UPDATE darkspere.rate_limit_overrides SET scope = 'phone_ceiling' WHERE scope = 'phone' AND subject !~ '^[0-9]+:';
DO $$
DECLARE
    stale bigint;
BEGIN
    SELECT count(*) INTO stale FROM darkspere.rate_limit_overrides WHERE scope = 'phone_out' AND subject !~ '^[0-9]+:';
    IF stale > 0 THEN
        RAISE WARNING '% override(s) of rate limit phone_out name a bare phone and no longer apply', stale
            USING HINT = 'Outbound per-phone limits are per tenant from 0.2.0: '
                         'the subject is ''<account_id>:<phone>''.';
    END IF;
END
$$;
