// test/e2e/peers/http-agent.mjs — a plain JSON agent speaking DarkSpere's `http` protocol (docs/protocols.md#http-agent-protocol):
// POST {request_id, session_id, from, to, message, history} → 200 {"reply": "..."}. It records every request so
// tests can assert what the worker sent, and it can misbehave on demand to drive failover.
//
// Modes (set at start, or later with setMode / POST /_mode {"mode": …, "delay_ms": …}):
//   echo       reply `<name>: <message> [history N]` at once
//   slow       like echo, after delay_ms
//   error500   answer 500 with a JSON error body
//   timeout    never answer (the connection stays open until the worker gives up or we close)
//   malformed  answer 200 with a body that is not JSON
//   bad-reply  answer 200 {"reply": 42} (not a string)
//   empty      answer 200 {"reply": ""} ("send nothing")
//   hold       keep the request open until release() (which also switches the mode back to echo)
//
// With signing secrets (option `secrets`, or setSecrets(list) — the stack sets the one register_agent returned),
// every turn must carry a valid X-DarkSpere-Signature (peers/signature.mjs); others are answered 401 and counted
// in `refused`, never as turns.
//
// Health probes: GET /health answers 200 {"status": "ok"} while healthy and 503 when not (setHealthy(bool) or
// POST /_health {"healthy": bool}); each probe is recorded in `probes`, and must be signed like a turn (over the
// empty body).
//
// CLI: node http-agent.mjs --port 0 [--mode echo] [--delay-ms 0] [--name agent]
import { setMaxListeners } from 'node:events';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import { closeServer, listen, parseCliArgs, pathOf, readBody, sendJson, sleep } from '../lib/net.mjs';
import { echoReply } from './echo.mjs';
import { SIGNATURE_HEADER, verifySignature } from './signature.mjs';

export const HTTP_AGENT_MODES = ['echo', 'slow', 'error500', 'timeout', 'malformed', 'bad-reply', 'empty', 'hold'];

export { echoReply };

// startHttpAgent starts the agent on 127.0.0.1 and resolves with
// {url, port, requests, setMode(mode, {delayMs}), answered, close()}.
export async function startHttpAgent({ port = 0, mode = 'echo', delayMs = 0, name = 'agent', secrets = [], log = () => {} } = {}) {
    if (!HTTP_AGENT_MODES.includes(mode)) throw new Error(`unknown http agent mode ${mode}`);
    const state = { mode, delayMs, secrets: [...secrets], healthy: true };
    const requests = [];
    const probes = []; // health probes (GET /health): {at, path, signed, healthy}
    const refused = []; // turns refused for a missing or bad signature: {path, signature}
    const held = new Set(); // resolvers of turns waiting in `hold` mode
    let answered = 0;
    const stopping = new AbortController(); // ends slow sleeps when the agent closes
    setMaxListeners(0, stopping.signal); // one listener per slow turn in flight: thousands in the benchmark

    // parseJson reads a JSON body; a body that is not JSON is answered 400 here and yields undefined.
    async function parseJson(req, res, { signed = false } = {}) {
        let raw;
        try {
            raw = await readBody(req);
            req.rawBody = raw;
            if (signed && state.secrets.length && !verifySignature(req.headers[SIGNATURE_HEADER], raw, state.secrets)) {
                refused.push({ path: pathOf(req), signature: req.headers[SIGNATURE_HEADER] || null });
                sendJson(res, 401, { error: 'missing or invalid X-DarkSpere-Signature' });
                return undefined;
            }
            return raw.length ? JSON.parse(raw.toString('utf8')) : {};
        } catch (err) {
            sendJson(res, err.status || 400, { error: err.status ? err.message : 'body is not JSON' });
            return undefined;
        }
    }

    async function answerTurn(req, res, body) {
        const record = {
            path: pathOf(req),
            content_type: req.headers['content-type'] || null,
            idempotency_key: req.headers['idempotency-key'] || null,
            authorization: req.headers.authorization || null,
            signature: req.headers[SIGNATURE_HEADER] || null,
            raw_body: req.rawBody ? req.rawBody.toString('utf8') : null, // the bytes the signature covers
            request_id: body.request_id,
            session_id: body.session_id,
            from: body.from,
            to: body.to,
            message: body.message,
            history: body.history,
            mode: state.mode,
            received_at: Date.now(),
        };
        requests.push(record);
        log(`http-agent ${name} (${state.mode}): ${JSON.stringify(body.message)} history=${body.history?.length ?? 'none'}`);
        switch (state.mode) {
        case 'timeout':
            return; // hold the request open; closeServer drops it
        case 'hold':
            await new Promise((resolve) => {
                held.add(resolve);
                stopping.signal.addEventListener('abort', resolve, { once: true });
            });
            break;
        case 'error500':
            return sendJson(res, 500, { error: 'agent exploded' });
        case 'malformed':
            res.writeHead(200, { 'Content-Type': 'application/json' });
            return res.end('{"reply": "unterminated');
        case 'bad-reply':
            return sendJson(res, 200, { reply: 42 });
        case 'empty':
            answered += 1;
            return sendJson(res, 200, { reply: '' });
        case 'slow':
            try {
                await sleep(state.delayMs, undefined, { signal: stopping.signal });
            } catch {
                return;
            }
            break;
        default:
            break;
        }
        if (res.destroyed || res.writableEnded) return;
        answered += 1;
        sendJson(res, 200, { reply: echoReply(name, body) });
    }

    // answerProbe — GET /health: 200 while healthy, 503 otherwise; a probe without a valid signature (when the
    // agent checks them) is answered 401, so a passing probe proves the worker signed it.
    function answerProbe(req, res) {
        const signed = !state.secrets.length
            || verifySignature(req.headers[SIGNATURE_HEADER], Buffer.alloc(0), state.secrets);
        probes.push({ at: Date.now(), path: req.url, signed, healthy: state.healthy });
        if (!signed) return sendJson(res, 401, { error: 'missing or invalid X-DarkSpere-Signature' });
        return state.healthy ? sendJson(res, 200, { status: 'ok' }) : sendJson(res, 503, { status: 'down' });
    }

    // Routes: GET /_requests, GET /health (probes), POST /_mode {"mode", "delay_ms"}, POST /_health {"healthy"},
    // and a turn on any other POST.
    async function route(req, res) {
        const path = pathOf(req);
        if (req.method === 'GET' && path === '/_requests') return sendJson(res, 200, requests);
        if (req.method === 'GET' && path === '/health') return answerProbe(req, res);
        if (req.method !== 'POST') return sendJson(res, 404, { error: `no route ${req.method} ${path}` });
        const body = await parseJson(req, res, { signed: path !== '/_mode' && path !== '/_health' });
        if (body === undefined) return undefined;
        if (path === '/_health') {
            handle.setHealthy(body.healthy !== false);
            return sendJson(res, 200, { healthy: state.healthy });
        }
        if (path === '/_mode') {
            try {
                handle.setMode(body.mode, { delayMs: body.delay_ms });
            } catch (err) {
                return sendJson(res, 400, { error: err.message });
            }
            return sendJson(res, 200, state);
        }
        return answerTurn(req, res, body && typeof body === 'object' ? body : {});
    }

    const server = createServer((req, res) => {
        route(req, res).catch((err) => {
            if (!res.headersSent) sendJson(res, 500, { error: err.message });
        });
    });
    const boundPort = await listen(server, port);
    const handle = {
        name,
        port: boundPort,
        url: `http://127.0.0.1:${boundPort}/`,
        requests,
        refused,
        probes,
        // setHealthy — what GET /health answers from now on (200 or 503); also POST /_health {"healthy": bool}.
        setHealthy(healthy) {
            state.healthy = Boolean(healthy);
        },
        // held — turns waiting in `hold` mode.
        get held() {
            return held.size;
        },
        // setSecrets sets the signing secrets this agent accepts (none: unsigned requests are accepted).
        setSecrets(list) {
            state.secrets = [...list];
        },
        // release answers every held turn (echo) and leaves `hold` mode.
        release() {
            state.mode = 'echo';
            for (const resolve of held) resolve();
            held.clear();
        },
        get answered() {
            return answered;
        },
        get mode() {
            return state.mode;
        },
        setMode(newMode, { delayMs: newDelay } = {}) {
            if (!HTTP_AGENT_MODES.includes(newMode)) throw new Error(`unknown http agent mode ${newMode}`);
            state.mode = newMode;
            if (newDelay !== undefined) state.delayMs = Number(newDelay);
        },
        close() {
            stopping.abort();
            return closeServer(server);
        },
    };
    return handle;
}

if (import.meta.url === pathToFileURL(process.argv[1] || '').href) {
    const args = parseCliArgs(process.argv.slice(2));
    const agent = await startHttpAgent({
        port: Number(args.port || 0),
        mode: args.mode || 'echo',
        delayMs: Number(args['delay-ms'] || 0),
        name: args.name || 'agent',
        log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(`${JSON.stringify({ msg: 'listening', peer: 'http-agent', port: agent.port, url: agent.url })}\n`);
    const stop = async () => {
        await agent.close();
        process.exit(0);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
}
