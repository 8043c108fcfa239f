// test/e2e/lib/paths.mjs — where the repository, its scripts and the worker binary are.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const PGCLUSTER = join(REPO_ROOT, 'scripts', 'pgcluster');
export const CITUS_NODES = join(REPO_ROOT, 'test', 'citus', 'nodes'); // the Citus mode's cluster (cluster.mjs)

// workerBinary returns the darkspere-worker to test: $DARKSPERE_WORKER_BIN, else the CMake build output.
export function workerBinary() {
    const bin = process.env.DARKSPERE_WORKER_BIN || join(REPO_ROOT, 'build', 'src', 'worker', 'darkspere-worker');
    if (!existsSync(bin)) {
        throw new Error(`darkspere-worker not found at ${bin}: run \`make\` at the repository root, or set DARKSPERE_WORKER_BIN`);
    }
    return bin;
}
