// demo/virtual-phone.mjs — plays Twilio for local development. It is both sides of Twilio at once:
//   - the phone network: each line you type becomes an inbound SMS webhook to the worker's /twilio/sms, signed
//     with the twilio SDK exactly as Twilio signs it;
//   - the Messages API: the worker sends the agent's answer to us (start the worker with
//     --twilio-base http://127.0.0.1:<api-port>), we print it as the phone receiving an SMS, and we post signed
//     status callbacks (sent, delivered) back to the worker.
//
//   node demo/virtual-phone.mjs --worker http://127.0.0.1:8080 --account AC…:TOKEN --number +14155550199 \
//        --phone +14155550100 --api-port 8081 [--public-url URL] [--script "hi" "STOP" …]
//
// --script (last option; every argument after it is one message) sends each line, waits for the answer (or, while opted out, for silence), prints the transcript and
// exits 0 when every expectation held, 1 otherwise.
import { clearLine, createInterface, cursorTo } from 'node:readline';
import { startTwilioApi } from '../test/e2e/peers/twilio-api.mjs';
import { inboundParams, signedPost } from '../test/e2e/lib/twilio-webhook.mjs';
import { parseCliArgs, sleep } from '../test/e2e/lib/net.mjs';

// Keywords DarkSpere handles itself (docs/architecture.md#compliance-keywords): whole body, case-insensitive.
const OPT_OUT = new Set(['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'REVOKE', 'OPTOUT']);
const OPT_IN = new Set(['START', 'YES', 'UNSTOP']);
const HELP = new Set(['HELP', 'INFO']);

const args = parseCliArgs(process.argv.slice(2));
const scriptIndex = process.argv.indexOf('--script');
const script = scriptIndex >= 0 ? process.argv.slice(scriptIndex + 1).filter((l) => !l.startsWith('--')) : null;

function usage(message) {
    process.stderr.write(`virtual-phone: ${message}\nusage: virtual-phone.mjs --worker URL --account SID:TOKEN --number E164 --phone E164 --api-port PORT [--public-url URL] [--script LINE…]\n`);
    process.exit(2);
}

const workerUrl = (args.worker || usage('--worker is required')).replace(/\/$/, '');
const publicUrl = (args['public-url'] || workerUrl).replace(/\/$/, '');
const [accountSid, authToken] = (() => {
    const pair = args.account || usage('--account SID:TOKEN is required');
    const colon = pair.indexOf(':');
    return [pair.slice(0, colon), pair.slice(colon + 1)];
})();
const serviceNumber = args.number || usage('--number is required');
const myPhone = args.phone || '+14155550100';
const replyTimeoutMs = Number(args['reply-timeout-ms'] || 20000);
const quietMs = Number(args['quiet-ms'] || 2500);
const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code, text) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);

const inbox = []; // SMS the worker sent to our phone, in arrival order
let waiter = null;

const api = await startTwilioApi({
    port: Number(args['api-port'] || 0),
    accounts: { [accountSid]: authToken },
    statusCallbacks: { delayMs: 300 },
});
api.events.on('message', (m) => {
    if (m.to !== myPhone) return;
    inbox.push(m);
    if (!script) printIncoming(m.body);
    waiter?.();
});

// printIncoming shows an SMS the phone received, above the prompt line being typed.
function printIncoming(text) {
    if (rl && process.stdout.isTTY) {
        clearLine(process.stdout, 0);
        cursorTo(process.stdout, 0);
    }
    process.stdout.write(`${paint('36', `${serviceNumber} ▸`)} ${text}\n`);
    if (rl) rl.prompt(true);
}

// send posts one inbound SMS webhook and returns the worker's answer (HTTP status and inline TwiML reply).
async function send(body) {
    const params = inboundParams({ accountSid, from: myPhone, to: serviceNumber, body });
    const res = await signedPost({ target: `${workerUrl}/twilio/sms`, signedUrl: `${publicUrl}/twilio/sms`, authToken, params });
    const inline = /<Message>([\s\S]*?)<\/Message>/.exec(res.text)?.[1]
        ?.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
    return { status: res.status, inline: inline ?? null };
}

// nextReply waits up to ms for an SMS beyond the first `seen` ones; resolves with it or null.
async function nextReply(seen, ms) {
    const deadline = Date.now() + ms;
    while (inbox.length <= seen && Date.now() < deadline) {
        await Promise.race([new Promise((resolve) => { waiter = resolve; }), sleep(Math.max(0, deadline - Date.now()))]);
        waiter = null;
    }
    return inbox.length > seen ? inbox[seen] : null;
}

async function runScript(lines) {
    const transcript = [];
    const problems = [];
    let optedOut = false;
    for (const line of lines) {
        const keyword = line.trim().toUpperCase();
        const seen = inbox.length;
        let res;
        try {
            res = await send(line);
        } catch (err) {
            problems.push(`"${line}": webhook failed: ${err.message}`);
            transcript.push({ you: line, agent: null, note: 'webhook failed' });
            break;
        }
        if (res.status !== 200) {
            problems.push(`"${line}": the worker answered ${res.status}`);
            transcript.push({ you: line, agent: null, note: `HTTP ${res.status}` });
            continue;
        }
        if (OPT_OUT.has(keyword)) optedOut = true;
        if (OPT_IN.has(keyword)) optedOut = false;
        const expectsReply = !optedOut && !OPT_IN.has(keyword) && !OPT_OUT.has(keyword);
        const reply = await nextReply(seen, expectsReply || HELP.has(keyword) ? replyTimeoutMs : quietMs);
        const text = res.inline ?? reply?.body ?? null;
        if (expectsReply && text === null) problems.push(`"${line}": no reply within ${replyTimeoutMs} ms`);
        if (optedOut && reply && !OPT_OUT.has(keyword)) problems.push(`"${line}": an SMS arrived while opted out: "${reply.body}"`);
        const note = OPT_OUT.has(keyword) ? 'opted out' : OPT_IN.has(keyword) ? 'opted in' : optedOut ? 'no reply (opted out)' : null;
        transcript.push({ you: line, agent: text, note });
    }
    for (const turn of transcript) {
        process.stdout.write(`${paint('33', `${myPhone} ◂`)} ${turn.you}\n`);
        if (turn.agent !== null) process.stdout.write(`${paint('36', `${serviceNumber} ▸`)} ${turn.agent}\n`);
        if (turn.note) process.stdout.write(`${paint('2', `   (${turn.note})`)}\n`);
    }
    if (problems.length) {
        process.stdout.write(`\n${paint('31', 'FAILED')}:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
        return 1;
    }
    process.stdout.write(`\n${paint('32', 'OK')}: ${transcript.length} messages, every expected reply arrived, none while opted out.\n`);
    return 0;
}

let rl = null;
async function runInteractive() {
    process.stdout.write(`Virtual phone ${myPhone} texting ${serviceNumber} through ${workerUrl}.\n`
        + 'Type a message and press Enter. STOP opts out, START opts back in, HELP asks for help. Ctrl-D or /quit ends.\n\n');
    rl = createInterface({ input: process.stdin, output: process.stdout, prompt: paint('33', `${myPhone} ◂ `) });
    rl.prompt();
    let quit = false;
    for await (const line of rl) {
        const body = line.trim();
        if (body === '/quit') {
            quit = true;
            break;
        }
        if (!body) {
            rl.prompt();
            continue;
        }
        try {
            const res = await send(body);
            if (res.status !== 200) process.stdout.write(paint('31', `   (the worker answered HTTP ${res.status})\n`));
            if (res.inline) printIncoming(res.inline);
        } catch (err) {
            process.stdout.write(paint('31', `   (could not reach the worker: ${err.message})\n`));
        }
        rl.prompt();
    }
    rl.close();
    if (!quit) process.stdout.write('\n'); // Ctrl-D / Ctrl-C leave the cursor after the prompt
    return 0;
}

process.stderr.write(`${JSON.stringify({ msg: 'listening', peer: 'virtual-phone', api_port: api.port })}\n`);
const code = script ? await runScript(script) : await runInteractive();
await api.close();
process.exit(code);
