// test/e2e/opt-out.test.mjs — opt-out compliance end to end: STOP (and its synonyms, any case) stops every SMS
// to that phone and never reaches an agent; START resumes; HELP answers with the account's help text; a
// recipient Twilio reports as unsubscribed (error 21610) is opted out and not retried.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted, inlineReply } from './lib/twiml.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

const HELP = 'Bakery bot: reply STOP to opt out';

describe('STOP stops replies and START resumes them', () => {
    test('STOP → no agent call and no SMS, even for later messages; START → answers again', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }], helpText: HELP });
        const agent = stack.agents[0].peer;
        const from = phone(1);

        assertAccepted(await stack.sms(from, 'hi'));
        await stack.waitForReplies(from, 1);

        const stop = await stack.sms(from, 'STOP');
        assert.equal(stop.status, 200, stop.text);
        assertAccepted(await stack.sms(from, 'hello? anyone?'));
        const afterStop = await stack.quiet(from, 1500);
        assert.equal(afterStop.length, 1, `no SMS after STOP: ${JSON.stringify(afterStop.map((m) => m.body))}`);
        assert.deepEqual(agent.requests.map((r) => r.message), ['hi'], 'keywords and opted-out messages never reach the agent');
        assert.equal(await stack.db.value('SELECT count(*)::int FROM darkspere.opt_outs WHERE phone = $1', [from]), 1);

        const start = await stack.sms(from, 'START');
        assert.equal(start.status, 200, start.text);
        assertAccepted(await stack.sms(from, 'back again'));
        const replies = await stack.waitForReplies(from, 2);
        assert.match(replies[1].body, /^agent-a: back again \[history \d+\]$/);
        assert.equal(await stack.db.value('SELECT count(*)::int FROM darkspere.opt_outs WHERE phone = $1', [from]), 0);
        assert.ok(!agent.requests.some((r) => ['STOP', 'START'].includes(r.message)));
    });

    test('opt-out keywords are whole-body, case-insensitive, with synonyms', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }] });
        const agent = stack.agents[0].peer;
        const cases = [['stop', true], [' Unsubscribe ', true], ['cancel', true], ['QUIT', true], ['please stop', false]];
        for (const [i, [body, optsOut]] of cases.entries()) {
            const from = phone(10 + i);
            assert.equal((await stack.sms(from, body)).status, 200);
            assertAccepted(await stack.sms(from, 'are you there?'));
            if (optsOut) {
                const replies = await stack.quiet(from, 800);
                assert.equal(replies.length, 0, `${JSON.stringify(body)} opts out: no SMS at all`);
            } else {
                const replies = await stack.waitForReplies(from, 2);
                assert.match(replies[0].body, /please stop/, 'a sentence containing STOP is an ordinary message');
            }
        }
        assert.ok(!agent.requests.some((r) => ['stop', ' Unsubscribe ', 'cancel', 'QUIT'].includes(r.message)));
    });

    test('HELP answers inline with the account help text and never reaches the agent', { timeout: 30000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }], helpText: HELP });
        const from = phone(20);
        const res = await stack.sms(from, 'help');
        const inline = inlineReply(res);
        const viaApi = await stack.quiet(from, 1000);
        const texts = [inline, ...viaApi.map((m) => m.body)].filter(Boolean);
        assert.deepEqual(texts, [HELP], 'the help text is sent exactly once (inline TwiML or Messages API)');
        assert.equal(stack.agents[0].peer.requests.length, 0);
    });
});

describe('Twilio error 21610 (recipient unsubscribed at the carrier)', () => {
    test('the send is not retried and the phone is opted out', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, { agents: [{ kind: 'http' }] });
        const from = phone(30);
        stack.api.fail({ to: from, code: 21610, times: 100 });
        assertAccepted(await stack.sms(from, 'hi'));
        await stack.api.waitForMessages(0);
        const attempts = () => stack.api.requests.filter((r) => r.params?.To === from).length;
        const deadline = Date.now() + 10000;
        while (attempts() < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.equal(attempts(), 1, 'the worker tried once');
        await new Promise((r) => setTimeout(r, 2000));
        assert.equal(attempts(), 1, '21610 is not retried');
        assert.equal(await stack.db.value('SELECT count(*)::int FROM darkspere.opt_outs WHERE phone = $1', [from]), 1,
            'record_provider_opt_out stored the opt-out');
        stack.api.clearFailures();
        assertAccepted(await stack.sms(from, 'hello?'));
        const later = await stack.quiet(from, 1500);
        assert.equal(later.length, 0, 'no SMS to a phone the carrier reported as unsubscribed');
    });
});
