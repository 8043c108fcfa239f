// test/e2e/peers/mcp-agent.mjs — an MCP agent built with the official TypeScript SDK 1.x (McpServer +
// StreamableHTTPServerTransport), serving the legacy protocol era (2025-11-25 and older) at POST /mcp. The SDK
// does the protocol, so the worker's MCP client is checked against code we did not write (docs/protocols.md#mcp-sdk-peers).
//
// Transports:
//   json       stateless, one server + transport per POST, plain JSON responses (enableJsonResponse: true)
//   sse        stateless, answers as a text/event-stream (enableJsonResponse: false)
//   stateful   Mcp-Session-Id sessions (sessionIdGenerator), SSE answers unless jsonResponse; expireSessions()
//              forgets every session so the next request gets 404 and the client must re-initialize
// Behaviours of the `chat` tool (setBehavior, or POST /_behavior {"behavior": …, "delay_ms": …}):
//   echo       text `<name>: <message> [history N]`
//   slow       echo after delay_ms
//   isError    a tool execution error (result.isError = true)
//   empty      a result with no text content
//   error500   every POST answers HTTP 500 before MCP sees it
//   announce   echo, after adding the tool `news` and sending notifications/tools/list_changed in the answer's
//              stream (an SSE transport carries it; a JSON one drops it, as the SDK does)
// More tools (option `extraTools`, names; addTool(name) later): each answers `<tool>: <message>`. Every call is in
// `calls` with its `tool`. noPing: ping is answered -32601 (method not found), as by a server without ping.
//
// With signing secrets (option `secrets`, or setSecrets(list)), every POST to /mcp must carry a valid
// X-DarkSpere-Signature (peers/signature.mjs), initialize and notifications included; others are answered 401
// before MCP sees them and counted in `refused`.
//
// CLI: node mcp-agent.mjs --port 0 [--transport json|sse|stateful] [--behavior echo] [--delay-ms 0] [--name agent]
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import express from 'express';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { closeServer, listen, parseCliArgs, sleep } from '../lib/net.mjs';
import { echoReply } from './echo.mjs';
import { SIGNATURE_HEADER, verifySignature } from './signature.mjs';

export const MCP_TRANSPORTS = ['json', 'sse', 'stateful'];
export const MCP_BEHAVIORS = ['echo', 'slow', 'isError', 'empty', 'error500', 'announce'];

const historyTurn = z.object({ role: z.string(), content: z.string() }).passthrough();

// The `chat` tool declares every argument of DarkSpere's default binding (docs/protocols.md#mcp-tools), so the worker sends
// them all; only `message` is required, so a worker that sends less still gets an answer (and tests see it).
const chatInput = {
    message: z.string().describe('the SMS text of this turn'),
    session_id: z.union([z.string(), z.number()]).optional().describe('DarkSpere conversation id'),
    from: z.string().optional().describe("the end user's phone number, E.164"),
    to: z.string().optional().describe('the service number, E.164'),
    history: z.array(historyTurn).optional().describe('earlier turns, oldest first'),
};

// startMcpAgent starts the agent on 127.0.0.1 and resolves with
// {url, port, calls, rpc, sessions, setBehavior, expireSessions, close}.
export async function startMcpAgent({
    port = 0,
    transport = 'json',
    jsonResponse = false,
    behavior = 'echo',
    delayMs = 0,
    name = 'mcp-agent',
    toolName = 'chat',
    respond = (args) => echoReply(name, args), // the text of a successful answer
    secrets = [],
    extraTools = [],
    noPing = false,
    log = () => {},
} = {}) {
    if (!MCP_TRANSPORTS.includes(transport)) throw new Error(`unknown MCP transport ${transport}`);
    if (!MCP_BEHAVIORS.includes(behavior)) throw new Error(`unknown MCP behavior ${behavior}`);
    const state = { behavior, delayMs, secrets: [...secrets], extraTools: [...extraTools] };
    const refused = []; // POSTs refused for a missing or bad signature: {method, signature}
    const calls = []; // one entry per tools/call that reached the tool
    const rpc = []; // every JSON-RPC message received: {method, id, session, protocol_version}
    const sessions = new Map(); // stateful mode: Mcp-Session-Id → {transport, server}
    const stopping = new AbortController();

    function makeServer(sessionRef) {
        const server = new McpServer({ name, version: '0.0.1' });
        for (const extra of state.extraTools) {
            server.registerTool(extra, { description: `The ${extra} tool`, inputSchema: { message: z.string() } }, async (args) => {
                calls.push({ ...args, tool: extra, mcp_session_id: sessionRef.id ?? null, received_at: Date.now(), answered: true });
                return { content: [{ type: 'text', text: `${extra}: ${args.message}` }] };
            });
        }
        server.registerTool(
            toolName,
            { description: 'Answer one SMS of a conversation', inputSchema: chatInput },
            async (args, extra) => {
                const call = { ...args, tool: toolName, mcp_session_id: sessionRef.id ?? null, behavior: state.behavior, received_at: Date.now() };
                calls.push(call);
                log(`mcp-agent ${name} (${state.behavior}): ${JSON.stringify(args.message)} history=${args.history?.length ?? 'none'}`);
                switch (state.behavior) {
                case 'isError':
                    return { isError: true, content: [{ type: 'text', text: 'the kitchen is on fire' }] };
                case 'empty':
                    return { content: [] };
                case 'announce':
                    if (!state.extraTools.includes('news')) state.extraTools.push('news');
                    await extra.sendNotification({ method: 'notifications/tools/list_changed' });
                    break;
                case 'slow':
                    await sleep(state.delayMs, undefined, { signal: stopping.signal });
                    break;
                default:
                    break;
                }
                call.answered = true;
                return { content: [{ type: 'text', text: await respond(args) }] };
            },
        );
        return server;
    }

    const app = express();
    app.disable('x-powered-by');
    app.post('/_behavior', express.json(), (req, res) => {
        handle.setBehavior(req.body.behavior, { delayMs: req.body.delay_ms });
        res.json(state);
    });
    app.get('/_calls', (req, res) => res.json(calls));

    // The raw body is kept for the signature check: it covers the bytes as sent, not re-serialised JSON.
    const keepRaw = (req, res, buf) => {
        req.rawBody = buf;
    };
    app.use('/mcp', express.json({ limit: '1mb', verify: keepRaw }), (req, res, next) => {
        const messages = Array.isArray(req.body) ? req.body : req.body ? [req.body] : [];
        const signature = req.get(SIGNATURE_HEADER) || null;
        if (req.method === 'POST' && state.secrets.length
            && !verifySignature(signature, req.rawBody ?? Buffer.alloc(0), state.secrets)) {
            refused.push({ method: messages[0]?.method ?? null, signature });
            return res.status(401).json({ error: 'missing or invalid X-DarkSpere-Signature' });
        }
        if (noPing && messages.length === 1 && messages[0]?.method === 'ping') {
            rpc.push({ http: req.method, method: 'ping', id: messages[0].id ?? null, session: req.get('mcp-session-id') || null,
                protocol_version: req.get('mcp-protocol-version') || null, signature });
            return res.json({ jsonrpc: '2.0', id: messages[0].id ?? null, error: { code: -32601, message: 'Method not found' } });
        }
        for (const m of messages) {
            rpc.push({
                http: req.method,
                method: m?.method ?? (m?.result ? 'result' : 'unknown'),
                id: m?.id ?? null,
                session: req.get('mcp-session-id') || null,
                protocol_version: req.get('mcp-protocol-version') || null,
                signature,
            });
        }
        if (req.method === 'POST' && state.behavior === 'error500') {
            return res.status(500).json({ error: 'agent exploded' });
        }
        next();
    });

    if (transport === 'stateful') {
        app.all('/mcp', async (req, res) => {
            const sessionId = req.get('mcp-session-id');
            if (sessionId) {
                const session = sessions.get(sessionId);
                if (!session) {
                    return res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
                }
                return session.transport.handleRequest(req, res, req.body);
            }
            if (req.method !== 'POST' || req.body?.method !== 'initialize') {
                return res.status(400).json({
                    jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: No valid session ID provided' }, id: null,
                });
            }
            const sessionRef = { id: null };
            const server = makeServer(sessionRef);
            const t = new StreamableHTTPServerTransport({
                sessionIdGenerator: () => randomUUID(),
                enableJsonResponse: jsonResponse,
                onsessioninitialized: (id) => {
                    sessionRef.id = id;
                    sessions.set(id, { transport: t, server });
                },
                onsessionclosed: (id) => {
                    sessions.delete(id);
                },
            });
            t.onclose = () => {
                if (sessionRef.id) sessions.delete(sessionRef.id);
            };
            await server.connect(t);
            await t.handleRequest(req, res, req.body);
        });
    } else {
        app.post('/mcp', async (req, res) => {
            const server = makeServer({ id: null });
            const t = new StreamableHTTPServerTransport({
                sessionIdGenerator: undefined,
                enableJsonResponse: transport === 'json',
            });
            res.on('close', () => {
                void t.close();
                void server.close();
            });
            try {
                await server.connect(t);
                await t.handleRequest(req, res, req.body);
            } catch (err) {
                log(`mcp-agent ${name}: ${err.message}`);
                if (!res.headersSent) {
                    res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null });
                }
            }
        });
        // Stateless servers have no listen stream and no sessions to delete.
        app.all('/mcp', (req, res) => {
            res.status(405).set('Allow', 'POST')
                .json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
        });
    }

    const httpServer = createServer(app);
    const boundPort = await listen(httpServer, port);
    const handle = {
        name,
        port: boundPort,
        url: `http://127.0.0.1:${boundPort}/mcp`,
        calls,
        rpc,
        refused,
        sessions,
        // addTool adds a tool the next tools/list shows (stateless transports build the server per request).
        addTool(toolNameToAdd) {
            if (!state.extraTools.includes(toolNameToAdd)) state.extraTools.push(toolNameToAdd);
        },
        get tools() {
            return [...state.extraTools, toolName];
        },
        // setSecrets sets the signing secrets this agent accepts (none: unsigned requests are accepted).
        setSecrets(list) {
            state.secrets = [...list];
        },
        get behavior() {
            return state.behavior;
        },
        setBehavior(newBehavior, { delayMs: newDelay } = {}) {
            if (!MCP_BEHAVIORS.includes(newBehavior)) throw new Error(`unknown MCP behavior ${newBehavior}`);
            state.behavior = newBehavior;
            if (newDelay !== undefined) state.delayMs = Number(newDelay);
        },
        // expireSessions forgets every MCP session, as a restarted server would: the next request gets 404.
        async expireSessions() {
            const all = [...sessions.values()];
            sessions.clear();
            await Promise.allSettled(all.map((s) => s.transport.close()));
        },
        async close() {
            stopping.abort();
            await handle.expireSessions();
            await closeServer(httpServer);
        },
    };
    return handle;
}

if (import.meta.url === pathToFileURL(process.argv[1] || '').href) {
    const args = parseCliArgs(process.argv.slice(2));
    const agent = await startMcpAgent({
        port: Number(args.port || 0),
        transport: args.transport || 'json',
        jsonResponse: Boolean(args['json-response']),
        behavior: args.behavior || 'echo',
        delayMs: Number(args['delay-ms'] || 0),
        name: args.name || 'mcp-agent',
        log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(`${JSON.stringify({ msg: 'listening', peer: 'mcp-agent', port: agent.port, url: agent.url })}\n`);
    const stop = async () => {
        await agent.close();
        process.exit(0);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
}
