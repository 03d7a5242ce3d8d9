import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, enssib } from '../../support/cli.js';

/**
 * The volume commands through the built CLI with the bundled inventory: a
 * client dry run prints the whole plan and contacts nothing, and malformed or
 * hostile names and sizes are refused before anything runs. A fake `ssh` first
 * on PATH records any attempt to reach a host.
 */
const dir = mkdtempSync(join(tmpdir(), 'enssib-vol-cli-'));
const marker = join(dir, 'ssh-was-called');
const env = { PATH: `${dir}:${process.env.PATH ?? ''}`, HOME: dir };

beforeAll(() => {
  assertBuilt();
  writeFileSync(join(dir, 'ssh'), `#!/bin/sh\necho "$@" >> '${marker}'\nexit 255\n`);
  chmodSync(join(dir, 'ssh'), 0o755);
});

const contacted = () => existsSync(marker) && readFileSync(marker, 'utf8').trim() !== '';

describe('volume create --dry-run over the bundled inventory', () => {
  it('prints the full plan with the exact commands per host and contacts nothing', async () => {
    const r = await enssib(['volume', 'create', 'mail', '200G', '--dry-run'], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/^Dry run of "volume create mail 200G": nothing was contacted; checks are listed, not run\./);
    const titles = [...out.matchAll(/^\d+\. (.*)$/gm)].map((m) => m[1]);
    expect(titles).toEqual([
      'take the storage lock',
      'read DRBD, LVM and target state on the storage servers',
      'create the logical volume on the metadata host',
      'make the filesystem on the metadata host, activate the logical volume on the others',
      'export on both storage servers with one device identity',
      'discovery on every worker (both portals)',
      'check one multipath map with two active paths on node01 (log in, check, log out)',
      'release the storage lock',
    ]);
    for (const check of ['drbdadm role r0', 'drbdadm cstate r0', 'drbdadm dstate r0', 'vgs --reportformat json', 'lvs --reportformat json', "read-conf /etc/scst.conf", 'scstadmin -noprompt -write_config', 'enssib-pvs vg_cluster r0']) {
      expect(out.split('\n').filter((l) => l.includes('check:') && l.includes(check))).toHaveLength(2); // data1 and data2
    }
    expect(out).toMatch(/\$ lvcreate --yes --wipesignatures y --zero y --activate y --name mail --size 200g --addtag enssib --addtag 'enssib_id_<new identity>' --addtag enssib_fs_ext4 vg_cluster\n/);
    // mkfs without -F, guarded: only when wipefs -n lists nothing and blkid -p exits 2
    expect(out).toMatch(/\$ sh -c .*wipefs -n.*blkid -p.*enssib-mkfs \/dev\/vg_cluster\/mail mkfs\.ext4 -q \/dev\/vg_cluster\/mail\n/);
    expect(out).not.toContain('mkfs.ext4 -q -F');
    expect(out).toContain('$ lvchange --activate y vg_cluster/mail');
    // the SCST objects, the same identity on both servers (a client dry run shows the
    // placeholder where a real run draws a random one), nv_cache 0 / write_through 1
    expect(out.match(/\t\tt10_dev_id "<new identity>"\n.*\t\tusn "<new identity>"\n/g)).toHaveLength(2);
    expect(out).not.toMatch(/[0-9a-f]{16}/);
    expect(out.match(/nv_cache 0/g)).toHaveLength(2);
    expect(out.match(/write_through 1/g)).toHaveLength(2);
    expect(out.match(/\$ scstadmin -noprompt -config \/etc\/scst.conf/g)).toHaveLength(2);
    expect(out).toContain('LUN 0 mail');
    for (const w of ['node01', 'node02', 'node03']) {
      expect(out).toContain(
        `  ${w}\n    check: iscsiadm -m node\n` +
          `    $ sh -c 'iscsiadm -m discovery -t sendtargets -p "$1" -o new -o update && iscsiadm -m node -T "$2" -p "$1" -o show >/dev/null' discover 10.66.6.1:3260 iqn.2016-04.fr.enssib:mail\n` +
          `    $ sh -c 'iscsiadm -m discovery -t sendtargets -p "$1" -o new -o update && iscsiadm -m node -T "$2" -p "$1" -o show >/dev/null' discover 10.66.6.2:3260 iqn.2016-04.fr.enssib:mail\n`,
      );
    }
    // the path check: one remote script that logs in, reads sessions and maps, logs out whatever happens and flushes the map left
    expect(out).toContain('check: iscsiadm -m session -P 3');
    const check = out.split('\n').find((l) => l.includes(' check-paths '));
    expect(check).toMatch(/check-paths iqn\.2016-04\.fr\.enssib:mail 30 1 10\.66\.6\.1:3260 10\.66\.6\.2:3260$/);
    for (const part of ['--login', 'multipath -ll', '--logout', ' EXIT; trap ', 'udevadm settle --timeout=30', 'multipath -f "$m"']) expect(check).toContain(part);
    expect(contacted()).toBe(false);
  });

  it('shows the PersistentVolume request with --pv, and the JSON plan with -o json', async () => {
    const r = await enssib(['volume', 'create', 'mail', '1.5T', '--dry-run', '--pv', '--fs', 'xfs', '-o', 'json'], { env });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { dryRun: string; phases: { title: string; hosts: { actions: string[] }[] }[]; volume: { iqn: string; size: string; kubernetes: unknown } };
    expect(doc.dryRun).toBe('client');
    expect(doc.volume.size).toBe('1.5T');
    expect(doc.volume.kubernetes).toEqual({ iscsi: { targetPortal: '10.66.6.1:3260', portals: ['10.66.6.2:3260'], iqn: 'iqn.2016-04.fr.enssib:mail', lun: 0, fsType: 'xfs' } });
    const pv = doc.phases.find((p) => p.title === 'create the PersistentVolume');
    expect(pv?.hosts[0]?.actions[0]).toContain('POST /api/v1/persistentvolumes');
    expect(doc.phases.flatMap((p) => p.hosts.flatMap((h) => h.actions)).join('\n')).toContain('--size 1536g');
    expect(contacted()).toBe(false);
  });

  it('dry-runs resize, delete and list without contacting anything', async () => {
    const resize = await enssib(['volume', 'resize', 'mail', '300G', '--dry-run'], { env });
    expect(resize.code).toBe(0);
    expect(resize.stdout).toContain('$ lvextend --size 300g vg_cluster/mail');
    expect(resize.stdout).toContain('$ scstadmin -noprompt -resync_dev mail');
    const del = await enssib(['volume', 'delete', 'mail', '--dry-run'], { env });
    expect(del.code).toBe(0);
    expect(del.stdout).toContain('$ lvremove --yes vg_cluster/mail');
    expect(del.stdout).toContain('$ scstadmin -noprompt -close_dev mail -handler vdisk_blockio');
    const list = await enssib(['volume', 'list', '--dry-run'], { env });
    expect(list.code).toBe(0);
    expect(list.stdout).toContain('check: iscsiadm -m session -P 3');
    expect(contacted()).toBe(false);
  });
});

describe('names and sizes are checked before anything runs', () => {
  const badNames: [string, RegExp][] = [
    ['mail;reboot', /volume name "mail;reboot" is not valid/],
    ['$(id)', /volume name "\$\(id\)" is not valid/],
    ['../x', /volume name "..\/x" is not valid/],
    ['', /volume name is empty/],
    ['a'.repeat(64), /64 characters long; at most 63/],
    ['Mail', /volume name "Mail" is not valid/],
    ['mäil', /volume name "mäil" is not valid/],
    ['mail name', /not valid/],
    ['mail\nrm', /not valid/],
    ['9mail', /not valid/],
    ['mail-', /not valid/],
    ['abcdefghijklmnopq', /17 characters long; with the scst target driver at most 16/],
  ];
  it.each(badNames)('refuses the name %j', async (name, re) => {
    // every name through create; the hostile ones through resize and delete too
    const all = /[;$./\n ]/.test(name);
    const cmds = [['create', '--', name, '1G'], ...(all ? [['resize', '--', name, '2G'], ['delete', '--yes', '--', name]] : [])];
    for (const cmd of cmds) {
      const r = await enssib(['volume', ...cmd], { env });
      expect(r.code, `${cmd.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(r.stdout).toBe('');
    }
    expect(contacted()).toBe(false);
  });

  const badSizes: [string, RegExp][] = [
    ['0', /must be greater than zero/],
    ['0G', /must be greater than zero/],
    ['abc', /size "abc" is not valid/],
    ['1.5.5G', /not valid/],
    ['$(id)', /not valid/],
    ['10X', /not valid/],
    ['1E', /not valid/],
    ['', /size is empty/],
    ['512K', /below 1M/],
    ['99999999999T', /larger than anything enssib manages/],
    ['-1G', /not valid/],
  ];
  it.each(badSizes)('refuses the size %j', async (size, re) => {
    for (const cmd of ['create', 'resize']) {
      const r = await enssib(['volume', cmd, '--', 'mail', size], { env });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(re);
    }
    expect(contacted()).toBe(false);
  });

  it('refuses a --verify-on that is not a worker, an unknown --fs and a bad --lock-wait', async () => {
    const v = await enssib(['volume', 'create', 'mail', '1G', '--verify-on', 'data1', '--dry-run'], { env });
    expect(v.code).toBe(2);
    expect(v.stderr).toMatch(/--verify-on "data1" is not a worker/);
    const fs = await enssib(['volume', 'create', 'mail', '1G', '--fs', 'btrfs', '--dry-run'], { env });
    expect(fs.code).toBe(2);
    const lw = await enssib(['volume', 'create', 'mail', '1G', '--lock-wait', '1;reboot', '--dry-run'], { env });
    expect(lw.code).toBe(2);
    expect(lw.stderr).toMatch(/--lock-wait/);
    expect(contacted()).toBe(false);
  });

  it('asks before deleting and refuses without a terminal or --yes', async () => {
    const r = await enssib(['volume', 'delete', 'mail'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/needs confirmation: run it again with --yes/);
    expect(contacted()).toBe(false);
  });
});
