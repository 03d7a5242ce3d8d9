import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt } from '../../support/cli.js';
import { kernelLab } from './lab.js';

/**
 * `enssib backup restore` on the kernel lab's real DRBD dual-primary pair,
 * LVM, LIO and node01's multipath: known data written through node01's
 * multipath device is backed up, changed, restored into a new volume and read
 * back through node01 (both paths); a restore over the volume itself (--force)
 * is refused while node01 is logged in, then done; a write killed in the middle
 * leaves no volume behind. The tests run in order and share the volumes.
 */
const lab = kernelLab();
const V = 'krst';
const NEW = 'krst-new';
const INT = 'krst-int';
const VOLUMES = [V, NEW, INT];
const iqn = (v: string) => `iqn.2016-04.fr.enssib:${v}`;
const PORTALS = ['10.66.6.1:3260', '10.66.6.2:3260'];
const timings: Record<string, number> = {};

/** The multipath device of a volume on node01 (one map holding the target's disks). */
const dev = (v: string) =>
  `$(for d in $(iscsiadm -m session -P 3 2>/dev/null | awk -v t=${iqn(v)} '/^Target: /{on=($2==t)} on && /Attached scsi disk/{print $4}'); do multipath -ll 2>/dev/null | awk -v d=$d '/ dm-[0-9]+ /{m=$1} $0 ~ " "d" " {print "/dev/mapper/"m; exit}'; done | head -n1)`;

function logout(v: string): void {
  lab.sh('node01', `for p in ${PORTALS.join(' ')}; do iscsiadm -m node -T ${iqn(v)} -p $p --logout >/dev/null 2>&1; done; udevadm settle; multipath -F >/dev/null 2>&1; true`);
}

/** Logs node01 in through both portals and waits for one map with two active paths. */
function login(v: string): void {
  lab.must(
    'node01',
    `for p in ${PORTALS.join(' ')}; do iscsiadm -m discovery -t st -p $p >/dev/null; iscsiadm -m node -T ${iqn(v)} -p $p --login >/dev/null; done; udevadm settle
     for i in $(seq 1 30); do d=${dev(v)}; [ -n "$d" ] && [ "$(multipath -ll "\${d#/dev/mapper/}" | grep -c 'active ready running')" = 2 ] && exit 0; sleep 1; done; multipath -ll; exit 1`,
  );
}

const sha = (v: string) => lab.must('node01', `dd if=${dev(v)} bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1`).trim();

function cleanup(): void {
  for (const v of VOLUMES) {
    logout(v);
    lab.sh('node01', `iscsiadm -m node -T ${iqn(v)} -o delete >/dev/null 2>&1; true`);
  }
  for (const vm of ['data1', 'data2']) {
    lab.sh(
      vm,
      VOLUMES.map((v) => `[ -d /sys/kernel/config/target/iscsi/${iqn(v)} ] && targetcli /iscsi delete ${iqn(v)} >/dev/null; ls -d /sys/kernel/config/target/core/iblock_*/${v} >/dev/null 2>&1 && targetcli /backstores/block delete ${v} >/dev/null;`).join('\n') + '\ntargetcli saveconfig >/dev/null; true',
    );
  }
  lab.sh('data2', VOLUMES.map((v) => `lvs vg_cluster/${v} >/dev/null 2>&1 && lvchange -an vg_cluster/${v};`).join('\n') + '\ntrue');
  lab.sh('data1', `lvs vg_cluster/${V}-enssib-snap >/dev/null 2>&1 && lvremove -y vg_cluster/${V}-enssib-snap; ${VOLUMES.map((v) => `lvs vg_cluster/${v} >/dev/null 2>&1 && lvremove -y vg_cluster/${v};`).join(' ')} rm -rf /srv/backup/${V} ${VOLUMES.map((v) => `/run/enssib/volume-${v}.lock`).join(' ')}; true`);
}

const lvTags = (v: string) => lab.sh('data1', `lvs --noheadings -o lv_tags vg_cluster/${v}`);

beforeAll(() => {
  assertBuilt();
  cleanup();
  lab.waitDrbdReady();
}, 900_000);

afterAll(() => {
  cleanup();
  process.stderr.write(`kernel lab restore timings (s): ${JSON.stringify(timings)}\n`);
}, 600_000);

describe('backup restore on real DRBD dual-primary, LVM, LIO and multipath', () => {
  let backedUp = '';
  let id = '';

  it('known data written through node01 is backed up, then changed', async () => {
    const r = await lab.enssib(['volume', 'create', V, '128M', '--fs', 'ext4']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    login(V);
    lab.must('node01', `head -c 128M /dev/urandom > /root/r.bin && dd if=/root/r.bin of=${dev(V)} bs=1M oflag=direct status=none`);
    backedUp = sha(V);
    expect(backedUp).toMatch(/^[0-9a-f]{64}$/);
    const b = await lab.enssib(['backup', 'snapshot', V]);
    expect(b.code, b.stdout + b.stderr).toBe(0);
    const list = JSON.parse((await lab.enssib(['backup', 'list', V, '-o', 'json'])).stdout) as { backups: { id: string }[] };
    id = list.backups.at(-1)?.id ?? '';
    expect(id).toMatch(/^krst\.\d{8}T\d{6}Z$/);
    lab.must('node01', `head -c 16M /dev/urandom | dd of=${dev(V)} bs=1M oflag=direct status=none`);
    expect(sha(V)).not.toBe(backedUp);
  }, 900_000);

  it('--dry-run=server shows the exact write and changes nothing', async () => {
    const r = await lab.enssib(['backup', 'restore', V, id, '--to', NEW, '--dry-run=server']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`enssib-backup-restore /dev/vg_cluster/${NEW} cat -- /srv/backup/${V}/${id}.img.zst`);
    expect(r.stdout).toContain('"$@" | zstd -q -dc | dd of="$dev" bs=4M iflag=fullblock oflag=direct conv=fsync status=none');
    expect(r.stdout).toContain('check: sha256sum -- /srv/backup/krst/');
    expect(r.stdout).toMatch(/lvcreate .*--addtag enssib_restoring vg_cluster/);
    expect(lvTags(NEW).code).not.toBe(0);
  }, 900_000);

  it('restores into a new volume: node01 reads the backed-up data through both paths', async () => {
    const t = Date.now();
    const r = await lab.enssib(['backup', 'restore', V, id, '--to', NEW]);
    timings.restoreNew = (Date.now() - t) / 1000;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`Backup ${id} restored into the new volume ${NEW} (128M)`);
    const tags = lvTags(NEW).stdout;
    expect(tags).toContain('enssib_fs_ext4');
    expect(tags).not.toContain('enssib_restoring');
    login(NEW);
    expect(sha(NEW)).toBe(backedUp);
  }, 900_000);

  it('a restore target that exists is refused without --force (exit 2); --force is refused while node01 is logged in', async () => {
    const exists = await lab.enssib(['backup', 'restore', V, id, '--to', NEW]);
    expect(exists.code, exists.stdout + exists.stderr).toBe(2);
    expect(exists.stderr).toContain(`volume "${NEW}" exists`);
    const used = await lab.enssib(['backup', 'restore', V, id, '--force', '--yes']);
    expect(used.code, used.stdout + used.stderr).toBe(1);
    expect(used.stderr).toMatch(/is logged in on node01|has iSCSI sessions on data/);
    expect(lvTags(V).stdout).not.toContain('enssib_restoring');
  }, 900_000);

  it('--force over the volume itself once node01 logged out: the backed-up data is back', async () => {
    logout(V);
    const t = Date.now();
    const r = await lab.enssib(['backup', 'restore', V, id, '--force', '--yes']);
    timings.restoreOver = (Date.now() - t) / 1000;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(lvTags(V).stdout).not.toContain('enssib_restoring');
    login(V);
    expect(sha(V)).toBe(backedUp);
  }, 900_000);

  it('the write killed in the middle: non-zero exit, the new volume undone (no LV, no export)', async () => {
    const killer = lab.background('data1', `for i in $(seq 1 4800); do if pkill -KILL -f 'dd of=/dev/vg_cluster/${INT}'; then echo killed; exit 0; fi; sleep 0.025; done; exit 1`);
    const r = await lab.enssib(['backup', 'restore', V, id, '--to', INT]);
    expect((await killer).stdout.trim()).toBe('killed');
    expect(r.code, r.stdout + r.stderr).not.toBe(0);
    expect(r.stderr).toContain(`volume ${INT} does not exist`);
    expect(lvTags(INT).code).not.toBe(0);
    expect(lab.sh('data2', `[ -d /sys/kernel/config/target/iscsi/${iqn(INT)} ]`).code).not.toBe(0);
  }, 900_000);
});
