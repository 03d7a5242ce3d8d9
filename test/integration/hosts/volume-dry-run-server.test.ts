import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { assertBuilt } from '../../support/cli.js';
import { volumeLab } from './volume-lab.js';

/**
 * `--dry-run=server` of every mutating volume command over real OpenSSH
 * (hosts lab, stand-in storage binaries): facts are read, nothing is changed,
 * exit 0, and the phases that depend on an earlier change say "known after
 * apply" instead of failing on facts that cannot exist yet.
 */
const v = volumeLab();
/** What a server dry run may call: reads only. */
const READS = /^(drbdadm (role|cstate|dstate|sh-dev) |vgs |lvs |pvs |wipefs -n |blkid -p |scstadmin -noprompt -write_config |iscsiadm -m node$|iscsiadm -m session -P 3$|multipath -ll$|dmsetup info -c |blockdev --getsize64 )/;

beforeAll(() => {
  assertBuilt();
  v.install();
});
beforeEach(() => v.reset());
afterAll(() => v.uninstall());

function onlyReads(): void {
  for (const h of v.hosts) for (const l of v.lines(h)) expect(l, `${h}: ${l}`).toMatch(READS);
  expect(v.exec('data1', 'test -e /run/enssib/storage.lock && echo held || echo free').trim()).toBe('free');
}

describe('--dry-run=server', () => {
  it('volume create of a new volume: the LV would be created, everything after it is known after apply', async () => {
    const r = await v.enssib(['volume', 'create', 'mail', '1G', '--dry-run=server']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('Dry run of "volume create mail 1G" (server): facts were read, nothing was changed.');
    expect(r.stdout).toMatch(/create the logical volume on the metadata host\n {2}data1 {2}would change\n/);
    // a server dry run plans with the identity a real run would draw (only a client dry run shows the placeholder)
    expect(r.stdout).toMatch(/\$ lvcreate .* --addtag enssib_id_[0-9a-f]{32} /);
    expect(r.stdout).not.toContain('<new identity>');
    expect(r.stdout).toMatch(/export on both storage servers with one device identity\n {2}data1 {2}known after apply\n/);
    expect(r.stdout).toContain('(known after apply: it depends on "create the logical volume on the metadata host")');
    expect(r.stdout).toMatch(/check one multipath map with two active paths on node01 \(log in, check, log out\)\n {2}node01 {2}known after apply\n/);
    onlyReads();
    expect(v.lines('data1', 'lvs')).toHaveLength(1);
  });

  it('volume create, resize and delete of an existing volume', async () => {
    const created = await v.enssib(['volume', 'create', 'mail', '1G']);
    expect(created.code, created.stderr).toBe(0);
    v.clearCalls();

    const same = await v.enssib(['volume', 'create', 'mail', '1G', '--dry-run=server']);
    expect(same.code, same.stdout + same.stderr).toBe(0);
    // Every structural phase is planned from facts: unchanged. Only the path check (log in, check, log out: one script) would run again.
    expect(same.stdout).toMatch(/create the logical volume on the metadata host\n {2}data1 {2}unchanged\n/);
    expect(same.stdout).toMatch(/export on both storage servers with one device identity\n {2}data1 {2}unchanged\n/);
    expect(same.stdout).toMatch(/discovery on every worker \(both portals\)\n {2}node01 {2}unchanged\n/);
    expect(same.stdout).toMatch(/check one multipath map with two active paths on node01 \(log in, check, log out\)\n {2}node01 {2}would change\n/);

    const grow = await v.enssib(['volume', 'resize', 'mail', '2G', '--dry-run=server']);
    expect([0, 4], grow.stdout + grow.stderr).toContain(grow.code);
    expect(grow.stdout).toContain('would change');
    expect(grow.stdout).toContain('known after apply');

    const del = await v.enssib(['volume', 'delete', 'mail', '--dry-run=server', '--skip-pv-check']);
    expect([0, 4], del.stdout + del.stderr).toContain(del.code);
    expect(del.stdout).toContain('would change');
    expect(del.stdout).toContain('known after apply');
    onlyReads();
    expect(v.exec('data1', 'ls /var/lib/enssib-stand-in/lvm/vg_cluster/').trim()).toBe('mail');
  });
});
