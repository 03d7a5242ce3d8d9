// An enssib run that freezes a filesystem and is then killed (the test sends
// it SIGKILL): the quiesce plan's real phases over real ssh — flush, arm the
// thaw timer, freeze — on one worker, then a "snapshot" that never ends.
// Built code (dist/): run after `npm run build`.
// Arguments: INVENTORY WORKER MOUNTPOINT SECONDS
import { FREEZE_AT, quiescePhases } from '../../../dist/backup/quiesce.js';
import { runPlan } from '../../../dist/engine/runner.js';
import { LOCAL } from '../../../dist/engine/types.js';
import { loadInventory } from '../../../dist/inventory/load.js';
import { sshPool } from '../../../dist/remote/pool.js';
import { volumeSite } from '../../../dist/storage/volume.js';

const [file, worker, mountpoint, seconds] = process.argv.slice(2);
const inv = loadInventory({ path: file, source: '--inventory' }, {});
const site = volumeSite(inv);
const q = quiescePhases(site, 'kvol', { services: [], freezeSeconds: Number(seconds) }, { inventory: file, kubeconfig: null, backupId: 'kvol.x', run: () => Promise.reject(new Error('no hooks')) });
const plan = {
  title: 'freeze, then die',
  mutating: true,
  phases: [
    // What the read of the workers' mounts finds (the lab has no multipath device to mount).
    { title: 'where the volume is mounted', hosts: [LOCAL], decide: (_h, _f, state) => state.values.set(FREEZE_AT, [{ host: worker, mountpoint }]), plan: () => [] },
    ...q.before,
    { title: 'a snapshot that never ends', hosts: [worker], plan: () => [{ kind: 'command', argv: ['sleep', '600'], timeoutMs: 900_000 }] },
  ],
};
process.stdout.write('running\n');
await runPlan(plan, { mode: 'apply', concurrency: 4, hosts: sshPool(inv) });
