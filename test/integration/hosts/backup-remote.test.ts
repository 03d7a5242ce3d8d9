import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupFiles, recordJson, writeRecordArgv, type BackupRecord } from '../../../src/backup/catalogue.js';
import { writeArgv } from '../../../src/backup/restore.js';
import { atDestination, type BackupSite } from '../../../src/backup/site.js';
import { checksumArgv, copyArgv, copyResultArgv, parseCopyResult, sinkArgv } from '../../../src/backup/snapshot.js';
import { quote } from '../../../src/remote/quote.js';
import { assertBuilt, enssib } from '../../support/cli.js';
import { volumeLab } from './volume-lab.js';

/**
 * A backup destination on a backup host over ssh, with real OpenSSH: data1
 * (the metadata storage server) reaches node01, which plays the backup host,
 * with data1's own root key and a known_hosts entry for node01 (BatchMode,
 * StrictHostKeyChecking=yes). The snapshot is a stand-in: a regular file of
 * 8 MiB on data1 (the containers have no LVM), read by the real copy pipeline
 * enssib renders; `zstd` is this machine's binary, dropped into the lab's
 * stand-ins folder. list, verify and prune run through the built CLI.
 */
const v = volumeLab();
const BACKUP_HOST = 'node01';
const DEST = '/srv/enssib-backup';
const SNAP = '/var/tmp/enssib-snap.img';
const ID = 'kvol.20261203T020000Z';
let ip = '';
let inventory = '';
let pub = '';
let bsite: Pick<BackupSite, 'remote'>;

/** Runs argv on data1 as root over the lab's ssh (as enssib's session does), the command as one quoted line. */
function onData1(argv: readonly string[], input?: string) {
  return execa('ssh', ['-F', join(v.lab.state, 'ssh_config'), 'data1', quote(argv)], { reject: false, ...(input === undefined ? {} : { input }) });
}

beforeAll(() => {
  assertBuilt();
  copyFileSync('/usr/bin/zstd', join(v.lab.standIns, 'zstd'));
  chmodSync(join(v.lab.standIns, 'zstd'), 0o755);
  expect(v.exec('data1', 'zstd --version')).toMatch(/Zstandard/);
  const container = (JSON.parse(execFileSync('cat', [join(v.lab.state, 'hosts.json')], { encoding: 'utf8' })) as { name: string; container: string }[]).find((h) => h.name === BACKUP_HOST)?.container ?? '';
  ip = execFileSync('docker', ['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', container], { encoding: 'utf8' }).trim();
  expect(ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  // data1's root key, authorized on the backup host; the backup host's key, known on data1 (as an admin sets them up: see docs/backup.md).
  pub = v.exec('data1', 'mkdir -p -m 0700 /root/.ssh && { [ -f /root/.ssh/id_ed25519 ] || ssh-keygen -q -t ed25519 -N "" -C enssib-backup-test -f /root/.ssh/id_ed25519; } && cat /root/.ssh/id_ed25519.pub').trim();
  v.exec(BACKUP_HOST, `grep -qxF '${pub}' /root/.ssh/authorized_keys || echo '${pub}' >> /root/.ssh/authorized_keys; rm -rf ${DEST}`);
  knowBackupHost();
  bsite = { remote: { user: 'root', host: ip, port: null } };
  inventory = v.lab.variant((t) => t.replace(/^backup:.*$/m, `backup: { destination: "ssh://root@${ip}${DEST}", retention: { daily: 2 } }`));
});

afterAll(() => {
  v.exec(BACKUP_HOST, `grep -vxF '${pub}' /root/.ssh/authorized_keys > /root/.ssh/ak.tmp; mv /root/.ssh/ak.tmp /root/.ssh/authorized_keys; rm -rf ${DEST}`);
  v.exec('data1', `rm -f /root/.ssh/known_hosts ${SNAP} /var/tmp/enssib-restored.img`);
  rmSync(join(v.lab.standIns, 'zstd'), { force: true });
});

function knowBackupHost(): void {
  const key = v.exec(BACKUP_HOST, 'cat /etc/ssh/ssh_host_ed25519_key.pub').trim().split(' ').slice(0, 2).join(' ');
  v.exec('data1', `echo '${ip} ${key}' > /root/.ssh/known_hosts`);
}

const cli = (args: string[]) => enssib(['-i', inventory, ...args], { timeoutMs: 120_000 });

describe('backup destination on a backup host over ssh (hosts lab, a regular file as the snapshot)', () => {
  it('the copy streams from data1 into the backup host; the result, list, verify and the restore read it there', async () => {
    const f = backupFiles(DEST, 'kvol', ID);
    const src = v.exec('data1', `{ head -c 4M /dev/urandom; head -c 4M /dev/zero; } > ${SNAP} && sha256sum < ${SNAP}`).split(' ')[0];
    expect((await onData1(atDestination(bsite, ['mkdir', '-p', '-m', '0700', '--', f.dir]))).exitCode).toBe(0);

    const copy = await onData1(copyArgv(SNAP, atDestination(bsite, sinkArgv(f.partial), { stdin: true })));
    expect(copy.exitCode, copy.stderr).toBe(0);
    // The stream arrived on the backup host, nothing of it on data1.
    const there = v.exec(BACKUP_HOST, `stat -c %s ${f.partial} && sha256sum < ${f.partial} && zstd -dc < ${f.partial} | sha256sum`).split('\n');
    expect(there[2]?.split(' ')[0]).toBe(src);
    expect(v.exec('data1', `ls -A /srv 2>/dev/null; echo end`).trim()).toBe('end');

    // The checksum of the file as written, on the backup host, then the result read there.
    const sum = await onData1(atDestination(bsite, checksumArgv(f.partial)));
    expect(sum.exitCode, sum.stderr).toBe(0);
    const result = await onData1(atDestination(bsite, copyResultArgv(f.partial)));
    const c = parseCopyResult({ exitCode: result.exitCode ?? 1, stdout: result.stdout, stderr: result.stderr, durationMs: 0 }, 8388608);
    expect(c.sizeBytes).toBe(8388608);
    expect(c.compressedBytes).toBe(Number(there[0]));
    expect(c.compressedBytes).toBeLessThan(5 * 1024 * 1024); // half zeroes: compressed
    expect(c.sha256).toBe(there[1]?.split(' ')[0]);
    expect(c.endMs).toBeGreaterThanOrEqual(c.startMs);

    const rec: BackupRecord = { format: 1, id: ID, volume: 'kvol', method: 'image', time: new Date(c.startMs).toISOString(), sizeBytes: c.sizeBytes, compressedBytes: c.compressedBytes, sha256: c.sha256, durationMs: c.endMs - c.startMs, snapshotFillPercent: 0, file: `${ID}.img.zst`, tool: 'enssib test' };
    expect((await onData1(atDestination(bsite, ['mv', '-T', '--', f.partial, f.image]))).exitCode).toBe(0);
    const wrote = await onData1(atDestination(bsite, writeRecordArgv(f.record), { stdin: true }), recordJson(rec));
    expect(wrote.exitCode, wrote.stderr).toBe(0);
    expect(v.exec(BACKUP_HOST, `stat -c %a ${f.record} && cat ${f.record}`)).toBe(`600\n${recordJson(rec)}`);

    const list = await cli(['backup', 'list', '-o', 'json']);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual({ destination: `ssh://root@${ip}${DEST} (from data1)`, backups: [rec] });

    const verify = await cli(['backup', 'verify', ID]);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain(`${ID}: ok`);

    // The restore's write: read on the backup host, decompressed and written on data1 (a regular file stands for the LV).
    v.exec('data1', 'rm -f /var/tmp/enssib-restored.img');
    const restored = await onData1(writeArgv(bsite, f.image, '/var/tmp/enssib-restored.img'));
    expect(restored.exitCode, restored.stderr).toBe(0);
    expect(v.exec('data1', 'sha256sum < /var/tmp/enssib-restored.img').split(' ')[0]).toBe(src);

    // A damaged image: verify recomputes the checksum on the backup host and reports the mismatch.
    v.exec(BACKUP_HOST, `printf x | dd of=${f.image} bs=1 seek=100 conv=notrunc status=none`);
    const bad = await cli(['backup', 'verify']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(new RegExp(`${ID.replace('.', '\\.')}: MISMATCH: sha256 [0-9a-f]{64} differs from the catalogue's ${c.sha256}`));
  });

  it('prune removes on the backup host what the retention does not keep', async () => {
    const days = ['20261128', '20261129', '20261130', '20261201'];
    for (const d of days) {
      const id = `kvol.${d}T020000Z`;
      const f = backupFiles(DEST, 'kvol', id);
      const rec: BackupRecord = { format: 1, id, volume: 'kvol', method: 'image', time: `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}T02:00:00.000Z`, sizeBytes: 1, compressedBytes: 1, sha256: 'a'.repeat(64), durationMs: 1, snapshotFillPercent: 0, file: `${id}.img.zst`, tool: 'enssib test' };
      v.writeFile(BACKUP_HOST, f.record, recordJson(rec), '0600');
      v.writeFile(BACKUP_HOST, f.image, 'x');
    }
    const dry = await cli(['backup', 'prune', '--dry-run=server']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/keep 2, remove 3/);
    const r = await cli(['backup', 'prune', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    // Daily 2: the two newest days stay (the backup of 2026-12-03 from the first test and 2026-12-01).
    expect(v.exec(BACKUP_HOST, `ls ${DEST}/kvol`).trim().split('\n')).toEqual(['kvol.20261201T020000Z.img.zst', 'kvol.20261201T020000Z.json', `${ID}.img.zst`, `${ID}.json`]);
  });

  it('an unknown backup host key is refused, never accepted on the way; an unreachable backup host is a clear error', async () => {
    v.exec('data1', 'rm -f /root/.ssh/known_hosts');
    const r = await cli(['backup', 'list']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: cannot read the backup catalogue: ssh from data1 to the backup host ${ip} failed: Host key verification failed.`);
    expect(r.stderr).toMatch(/root key of data1 must be authorized on the backup host.*enssib never accepts a new host key/);
    expect(v.exec('data1', 'cat /root/.ssh/known_hosts 2>/dev/null; echo end').trim()).toBe('end');
    knowBackupHost();

    const closed = v.lab.variant((t) => t.replace(/^backup:.*$/m, `backup: { destination: "ssh://root@${ip}:2/srv/x", retention: { daily: 2 } }`));
    const u = await enssib(['-i', closed, 'backup', 'list'], { timeoutMs: 120_000 });
    expect(u.code).toBe(1);
    expect(u.stderr).toMatch(/cannot read the backup catalogue: ssh from data1 to the backup host [\d.]+ failed: ssh: connect to host [\d.]+ port 2: Connection refused/);
  });
});
