import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPlan } from '../../../src/engine/runner.js';
import { ConnectionError, ExitCode } from '../../../src/errors.js';
import { lioFactsArgv } from '../../../src/storage/targets/lio.js';
import { listPlan, listRows, PHASE_LIST_WORKERS } from '../../../src/storage/volume-list.js';
import { PHASE_READ } from '../../../src/storage/volume.js';
import { fakePool } from '../../support/fake-hosts.js';
import { testVolumeSite } from '../../support/volume-site.js';

/**
 * `volume list` runs in the engine's read-only mode: every probe on every host
 * even when one fails; a host that could not be read is a finding and its
 * cells say "?" — never a crash, never "no volumes" from a host that did not answer.
 */
const fx = (f: string) => readFileSync(join(import.meta.dirname, 'fixtures', f), 'utf8');
const site = testVolumeSite({ driver: 'lio' });
const lioFacts = lioFactsArgv().join(' ');

function pool(opts: { data2Down?: boolean; node02IscsidDown?: boolean } = {}) {
  return fakePool((h, argv) => {
    const line = argv.join(' ');
    if (h === 'data2' && opts.data2Down) return new ConnectionError('data2', 'ssh: connect to host data2 port 22: No route to host');
    if (argv[0] === 'vgs') return { stdout: fx('vgs-kernel.json') };
    if (argv[0] === 'lvs') return { stdout: fx('lvs-kernel-volume.json') };
    if (line === lioFacts) return { stdout: fx(h === 'data1' ? 'lio-facts-export.txt' : 'lio-facts-export-data2.txt') };
    if (argv[0] === 'iscsiadm') return h === 'node02' && opts.node02IscsidDown ? { exitCode: 20, stderr: 'iscsiadm: Could not connect to iscsid\n' } : { stdout: fx('iscsiadm-session-P3.txt') };
    if (argv[0] === 'multipath') return { stdout: fx('multipath-ll-kernel.txt') };
    return undefined;
  });
}

describe('volume list in read-only mode', () => {
  it('every host answering: one row, both exports, no finding', async () => {
    const p = pool();
    const r = await runPlan(listPlan(site), { mode: 'server', concurrency: 4, hosts: p });
    expect(r.exitCode).toBe(ExitCode.ok);
    expect(r.findings).toEqual([]);
    const { rows, unreachable } = listRows(site, r);
    expect(unreachable).toEqual([]);
    expect(rows.map((x) => x.name)).toEqual(['kvol']);
  });

  it('a storage server down and a worker whose iscsid is down: every other probe still runs, both are findings, their cells "?"', async () => {
    const p = pool({ data2Down: true, node02IscsidDown: true });
    const r = await runPlan(listPlan(site), { mode: 'server', concurrency: 4, hosts: p });
    // Every host was asked, the failing ones included, and nothing stopped the run.
    for (const h of ['data1', 'data2', 'node01', 'node02']) expect(p.host(h).calls.length, h).toBeGreaterThan(0);
    expect(p.host('node02').calls.map((c) => c[0]).filter((c) => c !== 'true')).toEqual(['iscsiadm', 'multipath']); // 'true' opens the connection early (prefetch)
    expect(r.stoppedAt).toBeUndefined();
    expect(r.findings.map((f) => `${f.severity} ${f.host} ${f.check}`)).toEqual([`error data2 ${PHASE_READ}`, `error node02 ${PHASE_LIST_WORKERS}`]);
    expect(r.findings[1]?.found).toMatch(/iscsiadm -m session failed \(exit 20\)/);
    const { rows, unreachable } = listRows(site, r);
    expect(unreachable).toEqual(['data2', 'node02']);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.exports).toMatchObject({ data2: '?' });
    expect(rows[0]?.paths.node02).toBe('?');
    expect(rows[0]?.paths.node01).not.toBe('?');
  });

  it('no storage server answering: no rows and both unknown (the command then fails, exit 1)', async () => {
    const p = fakePool(() => new ConnectionError('x', 'ssh: connect: No route to host'));
    const r = await runPlan(listPlan(site), { mode: 'server', concurrency: 4, hosts: p });
    const { rows, unreachable } = listRows(site, r);
    expect(rows).toEqual([]);
    expect(unreachable).toEqual(['data1', 'data2', 'node01', 'node02']);
    expect(r.findings).toHaveLength(4);
  });
});
