// test/e2e/twilio-concurrency.test.mjs — the worker keeps at most twilio-max-concurrent Messages API requests
// open per Twilio account (Twilio answers 429 / 20429 above its account limit), the rest of a burst waits in the
// worker and is sent as slots free, and a freed slot goes to the tenants in turn: one tenant's burst does not put
// another tenant's reply behind all of it.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { waitFor } from './lib/net.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';
import { readMetric } from './lib/worker.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

const SEND_MS = 150; // how long the stand-in takes to answer each send in these tests
const TURN_SEND_MS = 1000; // … in the test of turns between tenants

describe('Twilio request concurrency', () => {
    test('a burst of 12 replies never has more than 3 requests open; Twilio answers no 429; each phone gets one reply', { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, {
            agents: [{ kind: 'http', capacity: 100 }],
            twilioApi: { concurrencyLimit: 3 },
            worker: { extraArgs: ['--twilio-max-concurrent', '3'] },
        });
        stack.api.fail({ times: 12, delay_ms: SEND_MS }); // slow sends: no code, so each succeeds after the delay
        const phones = Array.from({ length: 12 }, (_, i) => phone(900 + i));
        (await Promise.all(phones.map((p) => stack.sms(p, `burst from ${p}`)))).forEach(assertAccepted);
        for (const p of phones) {
            const replies = await stack.waitForReplies(p, 1, { timeoutMs: 20000 });
            assert.equal(replies.length, 1);
        }
        assert.equal(stack.api.peakOpen, 3, 'the three slots were used, and never more');
        const refused = stack.api.requests.filter((r) => r.outcome === 429);
        assert.deepEqual(refused, [], 'Twilio never had to refuse a request for concurrency');
        assert.equal(await readMetric(stack.worker, 'darkspere_twilio_sends_waiting'), 0);
        assert.ok(await readMetric(stack.worker, 'darkspere_twilio_send_wait_seconds_count') >= 12);
        const done = await stack.db.value("SELECT count(*)::int FROM darkspere.jobs WHERE kind = 'sms_send' AND state = 'done' AND attempt = 1");
        assert.equal(done, 12, 'every send done at its first attempt');
    });

    test("another tenant's reply is not queued behind a tenant's burst on the same Twilio account", { timeout: 60000 }, async (t) => {
        const stack = await useStack(t, cluster, {
            agents: [{ kind: 'http', capacity: 100 }],
            // A lease long enough that no send of the burst gives up waiting for the one slot (a send waits at most
            // its lease less its deadline): the order of sends is the gate's, not retries'.
            worker: { leaseSeconds: 30, extraArgs: ['--twilio-max-concurrent', '1'] },
        });
        // A second tenant with its own number on the same Twilio account, answered by the same agent server.
        const otherNumber = '+14155550198';
        await stack.addTenant({ name: 'Cafe', number: otherNumber, agentUrl: stack.agents[0].peer.url });

        // Slower sends than the first test's: the cafe's webhook, agent call and ack must reach the worker's queue
        // for the slot while at most one more send of the burst completes, also on a loaded machine (at 150 ms
        // it took three in a fresh Debian root).
        stack.api.fail({ times: 20, delay_ms: TURN_SEND_MS });
        const burst = Array.from({ length: 8 }, (_, i) => phone(920 + i));
        (await Promise.all(burst.map((p) => stack.sms(p, `bakery burst ${p}`)))).forEach(assertAccepted);
        // One send is open, the other seven wait in the worker for the one slot.
        await waitFor(async () => (await readMetric(stack.worker, 'darkspere_twilio_sends_waiting')) === 7,
            { timeoutMs: 10000, message: 'the burst waiting for the slot' });

        const cafePhone = phone(950);
        assertAccepted(await stack.sms(cafePhone, 'one latte please', { to: otherNumber }));
        await stack.waitForReplies(cafePhone, 1, { timeoutMs: 20000 });
        await stack.api.waitForMessages(9, { timeoutMs: 40000 });
        const order = stack.api.messages.map((m) => (m.to === cafePhone ? 'cafe' : 'bakery'));
        const position = order.indexOf('cafe');
        // In arrival order it would be last (9th); in turn it goes after the send that was open and at most one
        // more of the burst (taken for the slot before the cafe's reply reached the worker).
        assert.ok(position <= 2, `the cafe's reply was sent ${position + 1}th of 9: ${order.join(', ')}`);
    });
});
