// test/e2e/lib/run-files.mjs — runs test files N at a time through node:test's run(), for Node versions whose
// `node --test` has no --test-concurrency flag (before 20.10: Node 18 runs files one at a time on a 2-CPU machine,
// availableParallelism() - 1). Prints what `node --test` prints — TAP when stdout is not a terminal, spec when it
// is — closing with the same summary lines (# tests, # pass, # fail, …), and exits 1 if anything failed.
//
//   node lib/run-files.mjs CONCURRENCY FILE...
import { run } from 'node:test';
import { spec, tap } from 'node:test/reporters';
import { resolve } from 'node:path';

const [concurrencyArg, ...names] = process.argv.slice(2);
const concurrency = Math.max(1, Number.parseInt(concurrencyArg, 10) || 1);
const files = names.map((f) => resolve(f));

let failed = false;
const stream = run({ files, concurrency });
stream.on('test:fail', (event) => {
    // a todo test that fails does not fail the run, as with `node --test`
    if (!event?.todo) failed = true;
});
const reporter = process.stdout.isTTY ? new spec() : tap;
stream.compose(reporter).pipe(process.stdout);
stream.on('end', () => {
    if (failed) process.exitCode = 1;
});
