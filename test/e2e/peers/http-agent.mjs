// test/e2e/peers/http-agent.mjs — a plain JSON agent speaking DarkSpere's `http` protocol (specs/mcp.md §9):
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
//
// CLI: node http-agent.mjs --port 0 [--mode echo] [--delay-ms 0] [--name agent]
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import express from 'express';
import { closeServer, listen, parseCliArgs, sleep } from '../lib/net.mjs';
import { echoReply } from './echo.mjs';

export const HTTP_AGENT_MODES = ['echo', 'slow', 'error500', 'timeout', 'malformed', 'bad-reply', 'empty'];

export { echoReply };

// startHttpAgent starts the agent on 127.0.0.1 and resolves with
// {url, port, requests, setMode(mode, {delayMs}), answered, close()}.
export async function startHttpAgent({ port = 0, mode = 'echo', delayMs = 0, name = 'agent', log = () => {} } = {}) {
    if (!HTTP_AGENT_MODES.includes(mode)) throw new Error(`unknown http agent mode ${mode}`);
    const state = { mode, delayMs };
    const requests = [];
    let answered = 0;
    const stopping = new AbortController(); // ends slow sleeps when the agent closes

    const app = express();
    app.disable('x-powered-by');
    app.get('/_requests', (req, res) => res.json(requests));
    app.post('/_mode', express.json(), (req, res) => {
        handle.setMode(req.body.mode, { delayMs: req.body.delay_ms });
        res.json(state);
    });

    app.post(/.*/, express.json({ type: () => true, limit: '1mb' }), async (req, res) => {
        const body = req.body && typeof req.body === 'object' ? req.body : {};
        const record = {
            path: req.path,
            content_type: req.get('content-type') || null,
            idempotency_key: req.get('idempotency-key') || null,
            authorization: req.get('authorization') || null,
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
        case 'error500':
            return res.status(500).json({ error: 'agent exploded' });
        case 'malformed':
            return res.status(200).type('application/json').send('{"reply": "unterminated');
        case 'bad-reply':
            return res.status(200).json({ reply: 42 });
        case 'empty':
            answered += 1;
            return res.status(200).json({ reply: '' });
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
        res.status(200).json({ reply: echoReply(name, body) });
    });

    const server = createServer(app);
    const boundPort = await listen(server, port);
    const handle = {
        name,
        port: boundPort,
        url: `http://127.0.0.1:${boundPort}/`,
        requests,
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
