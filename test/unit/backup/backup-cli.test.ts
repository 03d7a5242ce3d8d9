import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, enssib } from '../../support/cli.js';

/**
 * The backup commands through the built CLI with the bundled inventory: a
 * client dry run prints the real commands and contacts nothing (a fake `ssh`
 * first on PATH records any attempt), and bad input is refused before
 * anything runs.
 */
const dir = mkdtempSync(join(tmpdir(), 'enssib-backup-cli-'));
const marker = join(dir, 'ssh-was-called');
const env = { PATH: `${dir}:${process.env.PATH ?? ''}`, HOME: dir };
const contacted = () => existsSync(marker) && readFileSync(marker, 'utf8').trim() !== '';

beforeAll(() => {
  assertBuilt();
  writeFileSync(join(dir, 'ssh'), `#!/bin/sh\necho "$@" >> '${marker}'\nexit 255\n`);
  chmodSync(join(dir, 'ssh'), 0o755);
});

describe('backup snapshot --dry-run', () => {
  it('prints every phase with the real commands, cleanup included, and contacts nothing', async () => {
    const r = await enssib(['backup', 'snapshot', 'mail', '--dry-run'], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const titles = [...r.stdout.matchAll(/^\d+\. (.*)$/gm)].map((m) => m[1]);
    expect(titles.map((t) => t?.replace(/^\[mail\] /, ''))).toEqual([
      'take the lock of the volume',
      'read the volume, its snapshots and exports on the storage servers',
      'read the sessions and multipath maps on the workers',
      'remove what an earlier backup of the volume left',
      'take the export offline on the other storage server',
      'deactivate the logical volume on the other storage server',
      'create the snapshot',
      'copy the snapshot (zstd)',
      'check the snapshot and remove it',
      'checksum the copy (sha256)',
      'keep the copy',
      'remove the snapshot and any partial copy',
      'check that the snapshot is gone',
      'reactivate and re-export on the other storage server',
      'log in and rescan on the workers that have the volume',
      'check both paths on the workers that have the volume',
      'release the lock of the volume',
    ]);
    expect(r.stdout).toContain('/run/enssib/volume-mail.lock');
    expect(r.stdout).toContain("$ lvcreate --yes --snapshot --name mail-enssib-snap --size '<20% of the volume>' vg_cluster/mail");
    expect(r.stdout).toMatch(/zstd -q -1 -T0 -c <&7 \| "\$@"/);
    expect(r.stdout).toMatch(/cat > "\$tmp" \|\| exit 1/);
    // The checksum of the file as written, after the snapshot's removal.
    expect(r.stdout).toContain(`sha256sum < "$1" > "$1.sha256"' enssib-backup-checksum /srv/backup/mail/.mail.`);
    expect(r.stdout.indexOf('enssib-backup-checksum')).toBeGreaterThan(r.stdout.indexOf('lvremove --yes vg_cluster/mail-enssib-snap'));
    expect(r.stdout).toMatch(/enssib-backup-copy \/dev\/vg_cluster\/mail-enssib-snap bash -c .* enssib-backup-sink \/srv\/backup\/mail\/\.mail\.\d{8}T\d{6}Z\.img\.zst\.partial/s);
    expect(r.stdout).toContain('$ lvchange --activate n vg_cluster/mail');
    expect(r.stdout).toContain('$ lvchange --activate y vg_cluster/mail');
    expect(r.stdout).toContain('$ lvremove --yes vg_cluster/mail-enssib-snap');
    expect(titles.every((t) => t?.startsWith('[mail] '))).toBe(true);
    expect(contacted()).toBe(false);
  });

  it('several volumes: one plan, each volume its own phases and cleanup', async () => {
    const r = await enssib(['backup', 'snapshot', 'mail', 'ldap', '--dry-run', '--concurrency', '2'], { env });
    expect(r.code, r.stderr).toBe(0);
    const titles = [...r.stdout.matchAll(/^\d+\. (.*)$/gm)].map((m) => m[1] ?? '');
    expect(titles.filter((t) => t.endsWith('release the lock of the volume'))).toEqual(['[mail] release the lock of the volume', '[ldap] release the lock of the volume']);
    expect(r.stdout).toMatch(/Dry run of "backup snapshot"/);
    expect(contacted()).toBe(false);
  });

  it('--all in a client dry run says the volumes are read when it runs', async () => {
    const r = await enssib(['backup', 'snapshot', '--all', '--dry-run'], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('--all: the volumes are read on data1 when the command runs');
    expect(contacted()).toBe(false);
  });
});

describe('bad input is refused before anything runs (exit 2)', () => {
  const cases: [string[], RegExp][] = [
    [['backup', 'snapshot'], /which volumes\? Give their names, or --all/],
    [['backup', 'snapshot', 'mail', '--all'], /give volume names or --all, not both/],
    [['backup', 'snapshot', 'mail', 'mail'], /volume "mail" is named twice/],
    [['backup', 'snapshot', '../etc'], /volume/],
    [['backup', 'snapshot', 'mail;reboot'], /volume/],
    [['backup', 'snapshot', 'Mail'], /volume/],
    [['backup', 'snapshot', 'a'.repeat(64)], /volume/],
    [['backup', 'snapshot', 'mail', '--lock-wait', '1h'], /--lock-wait "1h": expected a number of seconds/],
    [['backup', 'snapshot', 'mail', '--concurrency', '17'], /--concurrency 17: backup snapshot copies 1 to 16 volumes at once/],
    [['backup', 'snapshot', 'mail', '--concurrency', '256'], /--concurrency 256: backup snapshot copies 1 to 16/],
    [['backup', 'snapshot', 'mail', '--concurrency', '0'], /concurrency.*expected a whole number/],
    [['backup', 'snapshot', 'mail', '--concurrency', '-1'], /concurrency/],
    [['backup', 'snapshot', 'mail', '--concurrency', '1.5'], /concurrency.*expected a whole number/],
    [['backup', 'snapshot', 'mail', '--concurrency', 'two'], /concurrency.*expected a whole number/],
    [['backup', 'snapshot', 'mail', '--concurrency', '4;reboot'], /concurrency.*expected a whole number/],
    [['backup', 'list', '../x'], /volume/],
    [['backup', 'verify', 'mail.2026'], /backup id "mail\.2026" is not a backup id/],
    [['backup', 'verify', '../../etc/passwd.20261203T020000Z'], /is not a backup id/],
    [['backup', 'verify', 'mail.20261203T020000Z;id'], /is not a backup id/],
  ];
  for (const [args, msg] of cases) {
    it(args.join(' '), async () => {
      const r = await enssib([...args, '--dry-run'], { env });
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(contacted()).toBe(false);
    });
  }

  it('an inventory without a backup section, or with a bad destination or snapshot size, is a configuration error', async () => {
    const base = readFileSync(join(import.meta.dirname, '../../../inventory.yaml'), 'utf8');
    const variants: [string, RegExp][] = [
      [base.replace(/^backup:\n( {2}.*\n)+/m, ''), /has no backup section/],
      [base.replace('destination: /srv/backup', 'destination: srv/backup'), /backup\.destination: expected an absolute folder/],
      [base.replace('destination: /srv/backup', 'destination: /srv/../etc'), /backup\.destination: the folder name "\.\." is not accepted/],
      [base.replace('destination: /srv/backup', 'destination: "ssh://b1:0/srv"'), /backup\.destination: the port "0" is not a port \(1 to 65535\)/],
      [base.replace('destination: /srv/backup', 'destination: /srv/backup\n  snapshotSize: 150%'), /backup\.snapshotSize 150%.*1% to 100%/],
      [base.replace('destination: /srv/backup', 'destination: /srv/backup\n  snapshotSize: 10GB'), /snapshotSize/],
      ...['0h', '2 h', '2d', '-1h', '169h', '"2h;reboot"', '1e3s'].map((v): [string, RegExp] => [base.replace('destination: /srv/backup', `destination: /srv/backup\n  maxSinglePath: ${v}`), /backup\.maxSinglePath .* expected a duration such as 2h, 90m or 45s/]),
      [base.replace('destination: /srv/backup', 'destination: /srv/backup\n  maxSinglePath: 2'), /maxSinglePath/],
    ];
    for (const [text, msg] of variants) {
      const file = join(dir, 'inventory.yaml');
      writeFileSync(file, text);
      const r = await enssib(['-i', file, 'backup', 'snapshot', 'mail', '--dry-run'], { env, cwd: join(import.meta.dirname, '../../..') });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
    const file = join(dir, 'inventory.yaml');
    writeFileSync(file, base.replace('destination: /srv/backup', 'destination: /srv/backup\n  maxSinglePath: 90m'));
    const good = await enssib(['-i', file, 'backup', 'snapshot', 'mail', '--dry-run'], { env, cwd: join(import.meta.dirname, '../../..') });
    expect(good.code, good.stderr).toBe(0);
    expect(contacted()).toBe(false);
  });
});

describe('backup prune, verify, list --dry-run (client) contact nothing', () => {
  it('print the read and what would run', async () => {
    for (const args of [['backup', 'list'], ['backup', 'verify'], ['backup', 'prune']]) {
      const r = await enssib([...args, '--dry-run'], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('enssib-backup-list /srv/backup');
    }
    const p = await enssib(['backup', 'prune', '--dry-run'], { env });
    expect(p.stdout).toContain('rm -f -- /srv/backup/VOLUME/BACKUP.json');
    expect(p.stdout).toContain('With --dry-run=server the catalogue is read');
    expect(contacted()).toBe(false);
  });
});

describe('backup.method: borg through the CLI (client dry runs contact nothing)', () => {
  const root = join(import.meta.dirname, '../../..');
  const base = readFileSync(join(root, 'inventory.yaml'), 'utf8');
  const file = join(dir, 'borg-inventory.yaml');
  const PASS = '/root/enssib-borg.passphrase';
  const cli = (args: string[], text: string) => {
    writeFileSync(file, text);
    return enssib(['-i', file, ...args], { env, cwd: root });
  };
  const borg = base.replace('destination: /srv/backup', `destination: /srv/backup\n  method: borg\n  borg: { passphraseFile: ${PASS} }`);

  it('snapshot --dry-run: the same phases, with borg init where needed and borg create instead of the zstd copy', async () => {
    const r = await cli(['backup', 'snapshot', 'mail', '--dry-run'], borg);
    expect(r.code, r.stderr).toBe(0);
    const titles = [...r.stdout.matchAll(/^\d+\. \[mail\] (.*)$/gm)].map((m) => m[1]);
    expect(titles.slice(3, 11)).toEqual([
      'remove what an earlier backup of the volume left',
      'make the borg repository if there is none',
      'take the export offline on the other storage server',
      'deactivate the logical volume on the other storage server',
      'create the snapshot',
      'copy the snapshot into the borg repository (borg create)',
      'check the snapshot and remove it',
      'keep the copy',
    ]);
    expect(r.stdout).toMatch(/ borg create --json --read-special --chunker-params fixed,1048576 --compression zstd,3 --timestamp \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d \/srv\/backup\/borg::mail\.\d{8}T\d{6}Z \/dev\/vg_cluster\/mail-enssib-snap/);
    expect(r.stdout).toContain(`'BORG_PASSCOMMAND=cat -- ${PASS}'`);
    expect(r.stdout).toMatch(/borg info \/srv\/backup\/borg .*\|\| exec .*borg init --encryption=repokey-blake2 --make-parent-dirs \/srv\/backup\/borg/);
    expect(r.stdout).not.toMatch(/zstd -q -1|enssib-backup-sink/);
    expect(contacted()).toBe(false);
  });

  it('--concurrency above 1 is refused with borg (one archive at a time into the repository); 1 is accepted', async () => {
    const r = await cli(['backup', 'snapshot', 'mail', 'ldap', '--dry-run', '--concurrency', '2'], borg);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--concurrency 2: with backup\.method borg, volumes are backed up one at a time/);
    expect((await cli(['backup', 'snapshot', 'mail', 'ldap', '--dry-run', '--concurrency', '1'], borg)).code).toBe(0);
    expect(contacted()).toBe(false);
  });

  it('verify, prune and list --dry-run: the borg check and borg prune they would run, with the inventory\u2019s counts', async () => {
    const v = await cli(['backup', 'verify', '--dry-run'], borg);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/ borg check --verify-data \/srv\/backup\/borg;.* borg list --json \/srv\/backup\/borg/);
    const p = await cli(['backup', 'prune', '--dry-run'], borg);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/ borg prune --list --glob-archives 'VOLUME\.\*' --keep-daily 7 --keep-weekly 4 --keep-monthly 6 \/srv\/backup\/borg;.* borg compact \/srv\/backup\/borg/);
    expect(contacted()).toBe(false);
  });

  it('a bad borg setting is a configuration error naming the field (exit 2), before anything runs', async () => {
    const variants: [string, RegExp][] = [
      [base.replace('destination: /srv/backup', 'destination: /srv/backup\n  method: borg'), /backup\.method: method borg needs borg: \{ passphraseFile/],
      [base.replace('destination: /srv/backup', 'destination: /srv/backup\n  method: tar'), /backup\.method: expected one of "image", "borg"/],
      [base.replace('destination: /srv/backup', 'destination: /srv/backup\n  method: borg\n  borg: { passphraseFile: "/root/p;reboot" }'), /backup\.borg\.passphraseFile: the name "p;reboot" is not accepted/],
      [base.replace('destination: /srv/backup', 'destination: /srv/backup\n  method: borg\n  borg: { passphraseFile: root/p }'), /backup\.borg\.passphraseFile: expected an absolute file path/],
    ];
    for (const [text, msg] of variants) {
      const r = await cli(['backup', 'snapshot', 'mail', '--dry-run'], text);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(contacted()).toBe(false);
  });
});
