// test/e2e/lib/stack.mjs — one DarkSpere deployment for one test: a fresh database with the extension, an
// account with a service number and agents, the loopback peers (Twilio stand-in, agents) and a real worker.
//
//   const cluster = await startCluster();                       // once per test file
//   const s = await startStack(cluster, { agents: [{ kind: 'mcp', transport: 'sse' }] });
//   const r = await s.sms('+14155550100', 'hi');                 // signed webhook → {status, text, params}
//   const [reply] = await s.waitForReplies('+14155550100', 1);   // what the worker sent through "Twilio"
//   await s.close();
import { startTwilioApi } from '../peers/twilio-api.mjs';
import { startHttpAgent } from '../peers/http-agent.mjs';
import { startMcpAgent } from '../peers/mcp-agent.mjs';
import { randomHex, sleep } from './net.mjs';
import { inboundParams, signedPost } from './twilio-webhook.mjs';
import { startWorker } from './worker.mjs';

export const TWILIO_ACCOUNT_SID = 'AC0e2e0000000000000000000000000001';
export const SERVICE_NUMBER = '+14155550199';

// phone returns a distinct end-user number for index i (E.164, 555 test range).
export function phone(i) {
    return `+1415555${String(1000 + i).padStart(4, '0')}`;
}

async function startAgent(spec, i) {
    const name = spec.name || `agent-${String.fromCharCode(97 + i)}`;
    if (spec.kind === 'mcp') {
        const peer = await startMcpAgent({ name, transport: spec.transport || 'json', jsonResponse: spec.jsonResponse,
            behavior: spec.behavior || 'echo', delayMs: spec.delayMs || 0, extraTools: spec.extraTools || [],
            noPing: Boolean(spec.noPing) });
        return { peer, name, protocol: 'mcp', spec };
    }
    const peer = await startHttpAgent({ name, mode: spec.mode || 'echo', delayMs: spec.delayMs || 0 });
    return { peer, name, protocol: 'http', spec };
}

// Methods shared by every stack (kept off the constructor for readability).
const methods = {
    // startWorker starts (or restarts, on the same port so the public URL is unchanged) the worker.
    async startWorker(overrides = {}) {
        const previousPort = this.worker?.port;
        this.worker = await startWorker({
            conninfo: this.cluster.workerConninfo(this.dbName), // a darkspere_worker login, not the superuser
            twilioAccounts: { [this.sid]: this.authToken },
            twilioBase: this.api.url,
            port: previousPort,
            ...this.workerOptions,
            ...overrides,
        });
        this.webhookUrl = `${this.worker.url}/twilio/sms`;
        this.statusUrl = `${this.worker.url}/twilio/status`;
        return this.worker;
    },

    // sms posts one inbound SMS webhook, signed with the twilio SDK, and resolves with {status, text, params}.
    async sms(from, body, { messageSid, signature, extra, authToken = this.authToken, to = this.number } = {}) {
        const params = inboundParams({ accountSid: this.sid, from, to, body, messageSid, extra });
        const res = await signedPost({ target: this.webhookUrl, authToken, params, signature });
        return { ...res, params };
    },

    // repliesTo lists the SMS the worker sent to `phone` through the Twilio stand-in, oldest first.
    repliesTo(phoneNumber) {
        return this.api.messages.filter((m) => m.to === phoneNumber);
    },

    // waitForReplies resolves with the replies to `phone` once there are at least n.
    waitForReplies(phoneNumber, n, { timeoutMs = 15000 } = {}) {
        return this.api.waitForMessages(n, { timeoutMs, filter: (m) => m.to === phoneNumber });
    },

    // quiet waits ms and then returns the replies to phone: used to show that nothing more arrives.
    async quiet(phoneNumber, ms = 1000) {
        await sleep(ms);
        return this.repliesTo(phoneNumber);
    },

    // addTenant adds a second DarkSpere account on the same worker and Twilio account: its own service number,
    // answered by an agent registered at agentUrl. When that URL is one of this stack's signing agents, the
    // agent server accepts the new agent's signing secret too (one server, two registered agents). Resolves with
    // the account id.
    async addTenant({ name, number, agentUrl }) {
        const account = await this.db.value("SELECT darkspere.create_account($1, 'pro', $2)", [name, `${name} bot`]);
        await this.db.query('SELECT darkspere.add_number($1, $2, $3)', [account, number, this.sid]);
        const row = await this.db.one("SELECT * FROM darkspere.register_agent($1, $2, $3, 'http', 10)",
            [account, `${name.toLowerCase()}-agent`, agentUrl]);
        const shared = this.agents.find((a) => a.peer.url === agentUrl && !a.spec?.unsigned);
        if (shared) {
            shared.extraSecrets = [...(shared.extraSecrets || []), row.signing_secret];
            shared.peer.setSecrets([shared.signingSecret, ...shared.extraSecrets]);
        }
        return account;
    },

    agentNamed(name) {
        return this.agents.find((a) => a.name === name);
    },

    async close() {
        let sanitizer = null;
        await this.worker?.stop('SIGTERM').catch((err) => {
            if (/sanitizer report/.test(err.message)) sanitizer = err;
            return this.worker?.kill();
        });
        await Promise.allSettled(this.agents.map((a) => a.peer.close()));
        await this.api.close();
        await this.db.end();
        if (sanitizer) throw sanitizer; // a sanitized worker's report fails the test (scripts/test sanitize)
    },
};

export async function startStack(cluster, {
    agents = [{ kind: 'http' }],
    plan = 'pro',
    helpText = 'Bakery bot: reply STOP to opt out',
    fallbackText = null,
    statusCallbacks = false,
    twilioApi = {}, // more options of the Twilio stand-in (e.g. concurrencyLimit)
    worker = {},
    withWorker = true,
} = {}) {
    const authToken = randomHex(32);
    const { name: dbName, db } = await cluster.createDatabase();
    const api = await startTwilioApi({ ...twilioApi, accounts: { [TWILIO_ACCOUNT_SID]: authToken }, statusCallbacks });
    const peers = [];
    const stack = Object.assign(Object.create(methods), {
        cluster,
        db,
        dbName,
        api,
        agents: peers,
        authToken,
        sid: TWILIO_ACCOUNT_SID,
        number: SERVICE_NUMBER,
        worker: null,
        workerOptions: worker,
    });
    try {
        stack.accountId = await db.value('SELECT darkspere.create_account($1, $2, $3)', ['Bakery', plan, helpText]);
        if (fallbackText !== null) {
            await db.query('UPDATE darkspere.accounts SET fallback_text = $1 WHERE account_id = $2', [fallbackText, stack.accountId]);
        }
        await db.query('SELECT darkspere.add_number($1, $2, $3)', [stack.accountId, SERVICE_NUMBER, TWILIO_ACCOUNT_SID]);
        for (const [i, spec] of agents.entries()) {
            const agent = await startAgent(spec, i);
            peers.push(agent);
            const row = await db.one('SELECT * FROM darkspere.register_agent($1, $2, $3, $4, $5)',
                [stack.accountId, agent.name, agent.peer.url, agent.protocol, spec.capacity || 10]);
            agent.agentId = row.agent_id;
            agent.apiKey = row.api_key;
            // Every loopback agent checks X-DarkSpere-Signature with the secret register_agent returned, unless a
            // test asks for an agent that takes anything (spec.unsigned).
            agent.signingSecret = row.signing_secret;
            if (!spec.unsigned) agent.peer.setSecrets([row.signing_secret]);
            if (spec.status) await db.query('SELECT darkspere.set_agent_status($1, $2)', [agent.agentId, spec.status]);
        }
        if (withWorker) await stack.startWorker();
    } catch (err) {
        await stack.close();
        throw err;
    }
    return stack;
}

// useStack starts a stack for test t and stops it when t ends, whatever the outcome.
export async function useStack(t, cluster, options) {
    const stack = await startStack(cluster, options);
    t.after(() => stack.close());
    return stack;
}
