import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPlan } from '../../../src/engine/runner.js';
import { ExitCode } from '../../../src/errors.js';
import { lockOwner } from '../../../src/storage/lock.js';
import { lioFactsArgv } from '../../../src/storage/targets/lio.js';
import { PHASE_REFRESH, PHASE_WORKERS, resizePlan, resizeResult } from '../../../src/storage/volume-resize.js';
import { fakePool } from '../../support/fake-hosts.js';
import { testVolumeSite } from '../../support/volume-site.js';

/** `volume resize` over fake hosts: its phases plan from typed facts (sizes, sessions, maps, mounts). */
const fx = (f: string) => readFileSync(join(import.meta.dirname, 'fixtures', f), 'utf8');
const site = testVolumeSite({ driver: 'lio', workers: ['node01', 'node02'] });
const MiB = 1024 ** 2;
const asKvol = (t: string) => t.replace(/smoke/g, 'kvol');

function pool(opts: { node02IscsidDown?: boolean } = {}) {
  return fakePool((h, argv) => {
    const line = argv.join(' ');
    const drbd: Record<string, string> = { role: 'Primary/Primary\n', cstate: 'Connected\n', dstate: 'UpToDate/UpToDate\n' };
    if (argv[0] === 'drbdadm') return { stdout: drbd[argv[1] ?? ''] ?? '' };
    if (argv[0] === 'vgs') return { stdout: fx('vgs-kernel.json') };
    if (argv[0] === 'lvs') return { stdout: fx('lvs-kernel-volume.json') };
    if (line === lioFactsArgv().join(' ')) return { stdout: fx(h === 'data1' ? 'lio-facts-export.txt' : 'lio-facts-export-data2.txt') };
    if (argv[0] === 'blockdev') return h === 'data2' ? { exitCode: 1, stderr: 'blockdev: cannot open /dev/vg_cluster/kvol\n' } : { stdout: `${256 * MiB}\n` };
    if (argv[0] === 'iscsiadm' && argv.includes('session')) {
      if (h === 'node02' && opts.node02IscsidDown) return { exitCode: 20, stderr: 'iscsiadm: Could not connect to iscsid\n' };
      return h === 'node01' ? { stdout: asKvol(fx('iscsiadm-session-P3.txt')) } : { exitCode: 21 };
    }
    if (argv[0] === 'multipath') return h === 'node01' ? { stdout: asKvol(fx('multipath-ll-kernel.txt')) } : { stdout: '' };
    if (argv[0] === 'findmnt') return h === 'node01' ? { stdout: '/dev/mapper/36001405e0b96a6492d74e4c8a4876db0 /var/lib/kubelet/pods/x ext4\n' } : { stdout: '' };
    return undefined;
  });
}

const req = { name: 'kvol', sizeBytes: 512 * MiB, growFs: true, lockWaitS: 0 };

describe('volume resize plans from typed facts', () => {
  it('grows the LV, refreshes where the size is old (not where the LV is inactive), rescans, resizes the map and grows the mounted filesystem', async () => {
    const p = pool();
    const r = await runPlan(resizePlan(site, req, lockOwner(['t'])), { mode: 'apply', concurrency: 4, hosts: p });
    expect(r.exitCode, JSON.stringify(r.phases.flatMap((x) => x.hosts.map((h) => h.error?.message ?? '')))).toBe(ExitCode.ok);
    const refresh = r.phases.find((x) => x.title === PHASE_REFRESH);
    expect(refresh?.hosts.map((h) => `${h.host}:${h.status}`)).toEqual(['data1:done', 'data2:unchanged']);
    const node01 = p.host('node01').calls.map((c) => c.join(' '));
    expect(node01).toEqual(expect.arrayContaining(['multipathd resize map 36001405e0b96a6492d74e4c8a4876db0', 'resize2fs /dev/mapper/36001405e0b96a6492d74e4c8a4876db0']));
    expect(node01.filter((c) => c.startsWith('iscsiadm -m node') && c.includes('--rescan'))).toHaveLength(2);
    const res = resizeResult(site, req, r);
    expect(res).toMatchObject({ outcome: 'grown', to: '512M', filesystem: [{ host: 'node01', mountpoint: '/var/lib/kubelet/pods/x', fstype: 'ext4', grown: true }], pending: [] });
  });

  it('a worker whose iscsid is down fails alone (partial), and the summary lists it as pending without reading its facts again', async () => {
    const p = pool({ node02IscsidDown: true });
    const r = await runPlan(resizePlan(site, req, lockOwner(['t'])), { mode: 'apply', concurrency: 4, hosts: p });
    expect(r.exitCode).toBe(ExitCode.partial);
    expect(r.phases.find((x) => x.title === PHASE_WORKERS)?.hosts.map((h) => h.status)).toEqual(['done', 'failed']);
    const res = resizeResult(site, req, r);
    expect(res?.pending).toEqual([{ host: 'node02', error: expect.stringMatching(/iscsiadm -m session failed \(exit 20\)/) }]);
    expect(res?.filesystem.map((f) => f.host)).toEqual(['node01']);
  });
});
