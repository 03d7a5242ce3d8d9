import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runPlan } from '../../../src/engine/runner.js';
import type { Facts } from '../../../src/engine/types.js';
import { UsageError } from '../../../src/errors.js';
import { asIdentity } from '../../../src/storage/identity.js';
import { lockOwner } from '../../../src/storage/lock.js';
import { mkfsArgv, parseLvs, pvProblem } from '../../../src/storage/lvm.js';
import { createPlan, decideCreate, type CreateRequest } from '../../../src/storage/volume-create.js';
import { deletePlan, notEnssibs } from '../../../src/storage/volume-delete.js';
import { parseStorageFacts, storageChecks, type VolumeSite } from '../../../src/storage/volume.js';
import { fakePool } from '../../support/fake-hosts.js';
import { testVolumeSite } from '../../support/volume-site.js';

/**
 * enssib never destroys what it did not make: mkfs only on the LV this run
 * created and only on a device without any signature; delete only LVs with
 * its tags; create only on a VG whose physical volumes are the inventory's
 * DRBD device.
 */

const fx = (f: string) => readFileSync(join(import.meta.dirname, 'fixtures', f), 'utf8');
const res = (stdout: string, exitCode = 0, stderr = '') => ({ exitCode, stdout, stderr, durationMs: 1 });
const ID = asIdentity('0123456789abcdef0123456789abcdef');
const site: VolumeSite = testVolumeSite({ workers: [], driver: 'lio' });
const req = (over: Partial<CreateRequest> = {}): CreateRequest => ({ name: 'kvol', sizeBytes: 256 * 1024 ** 2, fs: 'ext4', verifyOn: null, pv: false, keepOnFailure: false, lockWaitS: 0, ...over });
const PVS_OK = res('drbd /dev/drbd0\npv /dev/drbd0 /dev/drbd0\n');

/** The facts storageChecks reads on a LIO server (DRBD healthy), in order. */
function lioFacts(lvs: string, pvs = PVS_OK, opts: { pvs?: boolean } = { pvs: true }): Facts {
  return [res('Primary/Primary\n'), res('Connected\n'), res('UpToDate/UpToDate\n'), res(fx('vgs-kernel.json')), res(lvs), ...(opts.pvs ? [pvs] : []), res('')];
}

describe('mkfs runs only on an LV this run created, and only where there is no signature (item: never mkfs data)', () => {
  const s = site;
  const facts = (lvs: string) => parseStorageFacts(s, 'data1', 'kvol', lioFacts(lvs), { pvs: true });

  it('an existing LV tagged for ext4 is never formatted, whatever blkid would say', () => {
    const d = decideCreate(s, req(), ID, facts(fx('lvs-kernel-volume.json')));
    expect(d).toMatchObject({ existed: true, fs: 'ext4', mkfs: false });
  });

  it('a re-run on an existing LV plans neither lvcreate nor mkfs', async () => {
    const pool = fakePool((_h, argv) => {
      const i = storageChecks(s, { pvs: true }).findIndex((c) => c.join(' ') === argv.join(' '));
      if (i >= 0) return lioFacts(fx('lvs-kernel-volume.json'))[i];
      return res('');
    });
    const r = await runPlan(createPlan(s, req(), { identity: ID, owner: lockOwner(['t']) }), { mode: 'apply', concurrency: 4, hosts: pool });
    const lines = pool.host('data1').calls.map((c) => c.join(' '));
    expect(lines.some((l) => /lvcreate|mkfs|wipefs/.test(l)), lines.join('\n')).toBe(false);
    expect(r.phases.find((p) => p.title === 'create the logical volume on the metadata host')?.hosts[0]?.status).toBe('unchanged');
  });

  it('a new LV gets mkfs without -F, behind the signature check', () => {
    const argv = mkfsArgv('ext4', '/dev/vg_cluster/kvol') ?? [];
    expect(argv.slice(-3)).toEqual(['mkfs.ext4', '-q', '/dev/vg_cluster/kvol']);
    expect(argv).not.toContain('-F');
    expect(mkfsArgv('xfs', '/dev/x')?.slice(-3)).toEqual(['mkfs.xfs', '-q', '/dev/x']);
    expect(mkfsArgv('none', '/dev/x')).toBeNull();
  });

  /** Runs the guard with real wipefs and blkid on a file, and `touch MARK` as the "mkfs". */
  function guard(file: string, path = process.env.PATH ?? '') {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-mkfs-'));
    const mark = join(dir, 'formatted');
    const argv = mkfsArgv('ext4', file) ?? [];
    const script = argv.slice(0, -3);
    const r = spawnSync(script[0] as string, [...script.slice(1), 'touch', mark], { encoding: 'utf8', env: { ...process.env, PATH: path } });
    const ran = spawnSync('test', ['-e', mark]).status === 0;
    return { code: r.status, stderr: r.stderr, ran };
  }

  it('reads wipefs and blkid exactly: data without a signature is formatted; any signature or unknown answer refuses', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-dev-'));
    const blank = join(dir, 'blank');
    writeFileSync(blank, Buffer.alloc(4 * 1024 * 1024));
    expect(guard(blank)).toMatchObject({ code: 0, ran: true });

    const swap = join(dir, 'swap');
    writeFileSync(swap, Buffer.alloc(4 * 1024 * 1024));
    expect(spawnSync('mkswap', [swap]).status).toBe(0); // a signature (util-linux, like wipefs and blkid)
    const refused = guard(swap);
    expect(refused).toMatchObject({ code: 1, ran: false });
    expect(refused.stderr).toMatch(/already has a signature, not creating a filesystem/);

    // blkid exit codes other than 2 (8: ambivalent result, 4: usage/open error) refuse even when wipefs lists nothing
    const bin = mkdtempSync(join(tmpdir(), 'enssib-bin-'));
    writeFileSync(join(bin, 'wipefs'), '#!/bin/sh\nexit 0\n');
    for (const code of [0, 4, 8]) {
      writeFileSync(join(bin, 'blkid'), `#!/bin/sh\nexit ${code}\n`);
      chmodSync(join(bin, 'wipefs'), 0o755);
      chmodSync(join(bin, 'blkid'), 0o755);
      const r = guard(blank, `${bin}:${process.env.PATH ?? ''}`);
      expect(r, `blkid exit ${code}`).toMatchObject({ code: 1, ran: false });
      expect(r.stderr).toContain(`blkid -p ${blank} exited ${code} (2 means no signature)`);
    }
    writeFileSync(join(bin, 'wipefs'), '#!/bin/sh\necho "wipefs: error: probing initialization failed" >&2; exit 1\n');
    expect(guard(blank, `${bin}:${process.env.PATH ?? ''}`)).toMatchObject({ code: 1, ran: false });
  });
});

describe('delete refuses an LV enssib did not make, saying what it is', () => {
  const lvs = fx('lvs-kernel-volume.json');
  const untagged = lvs.replace(/"lv_tags":"[^"]*"/, '"lv_tags":"nfs,backup"').replace(/"lv_name":"kvol"/, '"lv_name":"nfsdata"');

  it('names the LV, its size, state and tags', () => {
    const lv = parseLvs(untagged).find((l) => l.name === 'nfsdata');
    const e = lv && notEnssibs(site, 'data1', lv);
    expect(e).toBeInstanceOf(UsageError);
    expect(e?.message).toBe('vg_cluster/nfsdata is not a volume enssib made (it has no "enssib" tag); enssib deletes only its own volumes');
    expect(e?.details.slice(0, 2)).toEqual([expect.stringMatching(/^LV vg_cluster\/nfsdata on data1: 256M, (in)?active/), 'tags: nfs, backup']);
    const tagged = parseLvs(lvs).find((l) => l.name === 'kvol');
    expect(tagged && notEnssibs(site, 'data1', tagged)).toBeNull();
    const onlyTag = parseLvs(lvs.replace(/"lv_tags":"[^"]*"/, '"lv_tags":"enssib"'))[0];
    expect(onlyTag && notEnssibs(site, 'data1', onlyTag)?.message).toMatch(/no enssib_id_… identity tag/);
  });

  it('stops the delete before any change: no lvchange, no lvremove, no export removed', async () => {
    const pool = fakePool((_h, argv) => {
      const i = storageChecks(site).findIndex((c) => c.join(' ') === argv.join(' '));
      if (i >= 0) return lioFacts(untagged, PVS_OK, { pvs: false })[i];
      return res('');
    });
    const r = await runPlan(deletePlan(site, { name: 'nfsdata', lockWaitS: 0, checkPvs: false }, { owner: lockOwner(['t']) }), { mode: 'apply', concurrency: 4, hosts: pool });
    expect(r.stoppedAt).toBe('read DRBD, LVM and target state on the storage servers');
    for (const h of ['data1', 'data2']) {
      expect(pool.host(h).calls.map((c) => c[0]).filter((t) => t === 'lvremove' || t === 'lvchange' || t === 'targetcli')).toEqual([]);
    }
    expect(r.phases.find((p) => p.title.startsWith('read DRBD'))?.hosts[0]?.error?.exitCode).toBe(2);
  });
});

describe('create allocates only on the DRBD device the inventory names', () => {
  it('accepts a VG whose every PV is the DRBD device (through symlinks)', () => {
    expect(pvProblem(PVS_OK, 'vg_cluster', 'r0')).toBeNull();
    expect(pvProblem(res('drbd /dev/drbd0\npv /dev/drbd/by-res/r0/0 /dev/drbd0\n'), 'vg_cluster', 'r0')).toBeNull();
  });

  it('refuses a PV on a local disk, an LV or a partition, naming it', () => {
    expect(pvProblem(res('drbd /dev/drbd0\npv /dev/drbd0 /dev/drbd0\npv /dev/sda3 /dev/sda3\n'), 'vg_cluster', 'r0')).toBe(
      'volume group vg_cluster has physical volume /dev/sda3, which is not the device of DRBD resource r0 (/dev/drbd0): a volume there would not be replicated',
    );
    expect(pvProblem(res('drbd /dev/drbd0\npv /dev/vg0/lvpv /dev/dm-3\n'), 'vg_cluster', 'r0')).toMatch(/physical volume \/dev\/vg0\/lvpv \(\/dev\/dm-3\)/);
  });

  it('refuses when it cannot tell: the check failed, no DRBD device, no PV', () => {
    expect(pvProblem(res('', 10, "'r0' not defined in your config (for this host).\n"), 'vg_cluster', 'r0')).toMatch(/cannot read the physical volumes of vg_cluster .*exit code 10: 'r0' not defined/);
    expect(pvProblem(res('pv /dev/drbd0 /dev/drbd0\n'), 'vg_cluster', 'r0')).toBe('DRBD resource r0 has no device');
    expect(pvProblem(res('drbd /dev/drbd0\n'), 'vg_cluster', 'r0')).toBe('volume group vg_cluster has no physical volume');
  });

  it('stops create in the read phase, before lvcreate', async () => {
    const pool = fakePool((_h, argv) => {
      const i = storageChecks(site, { pvs: true }).findIndex((c) => c.join(' ') === argv.join(' '));
      if (i >= 0) return lioFacts(fx('lvs-kernel.json'), res('drbd /dev/drbd0\npv /dev/loop7 /dev/loop7\n'))[i];
      return res('');
    });
    const r = await runPlan(createPlan(site, req(), { identity: ID, owner: lockOwner(['t']) }), { mode: 'apply', concurrency: 4, hosts: pool });
    expect(r.stoppedAt).toBe('read DRBD, LVM and target state on the storage servers');
    expect(r.phases.find((p) => p.title.startsWith('read DRBD'))?.hosts[0]?.error?.message).toMatch(/data1: volume group vg_cluster has physical volume \/dev\/loop7/);
    expect(pool.host('data1').calls.map((c) => c[0])).not.toContain('lvcreate');
  });

  it('refuses a size beyond the free room of the VG before any change', () => {
    const f = parseStorageFacts(site, 'data1', 'big', lioFacts(fx('lvs-kernel.json')), { pvs: true });
    expect(() => decideCreate(site, req({ name: 'big', sizeBytes: 3 * 1024 ** 3 }), ID, f)).toThrow(/more than volume group vg_cluster has free on data1/);
  });
});

describe('delete refuses while something outside enssib\'s view uses the volume, naming it', () => {
  const withWorkers: VolumeSite = { ...site, workers: ['node01'] };
  const tagged = fx('lvs-kernel-volume.json');
  /** A LIO site whose target kvol has sessions from `initiators` on data1; node01 is iqn…:node01. */
  function pool(initiators: string[]) {
    return fakePool((host, argv) => {
      const i = storageChecks(withWorkers).findIndex((c) => c.join(' ') === argv.join(' '));
      if (i >= 0) return lioFacts(tagged, PVS_OK, { pvs: false })[i];
      if (argv[3] === 'target-sessions') return res(host === 'data1' ? initiators.map((n) => `${n}\n`).join('') : '');
      if (argv[3] === 'initiator-name') return res('iqn.1993-08.org.debian:01:node01\n');
      if (argv[0] === 'iscsiadm') return res('', 21, 'iscsiadm: No active sessions.\n');
      return res('');
    });
  }
  const run = (p: ReturnType<typeof pool>, users?: Parameters<typeof deletePlan>[2]['users']) =>
    runPlan(deletePlan(withWorkers, { name: 'kvol', lockWaitS: 0, checkPvs: users !== undefined }, { owner: lockOwner(['t']), ...(users ? { users } : {}) }), {
      mode: 'apply',
      concurrency: 4,
      hosts: p,
    });
  const destructive = (p: ReturnType<typeof pool>) =>
    ['data1', 'data2', 'node01'].flatMap((h) => p.host(h).calls.filter((c) => ['lvremove', 'lvchange', 'targetcli'].includes(c[0] as string) || c.includes('--logout') || c.includes('delete')));

  it('a session from an initiator that is no worker of the inventory stops the delete', async () => {
    const p = pool(['iqn.1993-08.org.debian:01:node01', 'iqn.2005-03.org.open-iscsi:backup-host']);
    const r = await run(p);
    expect(r.stoppedAt).toBe('check that nothing uses the volume');
    const err = r.phases.find((x) => x.title === 'check that nothing uses the volume')?.hosts[0]?.error;
    expect(err?.message).toBe('volume "kvol" has iSCSI sessions from initiators that are no worker of the inventory');
    expect(err?.details).toContain('on data1: iqn.2005-03.org.open-iscsi:backup-host');
    expect(destructive(p)).toEqual([]);
  });

  it('sessions from the inventory\'s workers only: the delete goes on', async () => {
    const p = pool(['iqn.1993-08.org.debian:01:node01']);
    const r = await run(p);
    expect(r.stoppedAt).toBeUndefined();
    expect(p.host('data1').calls.map((c) => c[0])).toContain('lvremove');
  });

  it('a pod naming the target inline (no PersistentVolume) stops the delete, naming the pod', async () => {
    const p = pool([]);
    const r = await run(p, async () => [{ kind: 'Pod', name: 'mail-0', namespace: 'mail', detail: 'node01', binding: false }]);
    expect(r.stoppedAt).toBe('check that nothing uses the volume');
    expect(r.phases.find((x) => x.title === 'check that nothing uses the volume')?.hosts[0]?.error?.message).toBe('volume "kvol" is used by Pod mail/mail-0 (node01)');
    expect(destructive(p)).toEqual([]);
  });

  it('an unreadable session list is an error, never "no session"', async () => {
    const p = fakePool((host, argv) => {
      const i = storageChecks(withWorkers).findIndex((c) => c.join(' ') === argv.join(' '));
      if (i >= 0) return lioFacts(tagged, PVS_OK, { pvs: false })[i];
      if (argv[3] === 'target-sessions') return host === 'data2' ? res('', 1, 'cat: Permission denied\n') : res('');
      return res('');
    });
    const r = await run(p);
    expect(r.stoppedAt).toBe('read who has a session on the target on the storage servers');
    expect(destructive(p)).toEqual([]);
  });
});

describe('the SCST removal leaves a device of that name under another handler alone', () => {
  it('refuses when the device in force is under another handler', async () => {
    const { unexportActions } = await import('../../../src/storage/exports.js');
    const scst: VolumeSite = { ...site, driver: 'scst' };
    const vgs = fx('vgs-kernel.json');
    const running = 'HANDLER vdisk_fileio {\n\tDEVICE kvol {\n\t\tfilename /srv/kvol.img\n\t}\n}\n';
    const f = parseStorageFacts(scst, 'data1', 'kvol', [res(vgs), res(fx('lvs-kernel.json')), res(''), res(running), res('600 root:root\n')], { drbd: false });
    expect(() => unexportActions(scst, f, 'kvol')).toThrow(/data1: .*under HANDLER vdisk_fileio/);
  });
});
