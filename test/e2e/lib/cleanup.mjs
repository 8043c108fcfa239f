// test/e2e/lib/cleanup.mjs — last-resort cleanup: whatever a test file started is stopped when its process exits,
// even when a test throws before its own after() hooks run or the runner kills the file on a timeout.
const exitHooks = new Set();

// onExit registers a synchronous function to run at process exit; returns a function that unregisters it.
export function onExit(fn) {
    exitHooks.add(fn);
    return () => exitHooks.delete(fn);
}

function runAll() {
    for (const fn of [...exitHooks]) {
        exitHooks.delete(fn);
        try {
            fn();
        } catch {
            // best effort: keep cleaning up the rest
        }
    }
}

process.on('exit', runAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
        runAll();
        process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 })[signal]);
    });
}
