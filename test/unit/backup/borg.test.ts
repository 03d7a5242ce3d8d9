import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveNames, checkArgv, compactArgv, createArgv, deleteArgv, extractArgv, infoArgv, initArgv, listArgv, parseCreate, parsePruneList, pruneArgv, type BorgRepo } from '../../../src/backup/borg.js';
import type { BackupRecord } from '../../../src/backup/catalogue.js';
import { restoreWriteArgv } from '../../../src/backup/restore.js';
import type { BackupSite } from '../../../src/backup/site.js';
import { borgCopyArgv, parseCopyProgress } from '../../../src/backup/snapshot.js';
import { LocalHost } from '../../../src/remote/local.js';
import type { RunResult } from '../../../src/remote/types.js';

/**
 * The borg method's commands, run for real with Debian's borgbackup on this
 * machine through LocalHost (the storage server's side, as root, in a temp
 * folder). A regular file of 8 MiB stands in for the LVM snapshot device
 * (`--read-special` reads it as it reads a block device), and another for the
 * restored volume's device.
 */
const MiB = 1024 * 1024;
const PASSPHRASE = 'S3cret-Passphrase-never-shown-7q';
const dir = mkdtempSync(join(tmpdir(), 'enssib-borg-'));
const dev = join(dir, 'snap.img');
const repo: BorgRepo = { path: join(dir, 'dest', 'borg'), remote: null, passphraseFile: join(dir, 'passphrase') };
const host = new LocalHost('data1', 120_000);
const argvs: string[][] = [];
const outputs: string[] = [];
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

async function run(argv: string[]): Promise<RunResult> {
  argvs.push(argv);
  const r = await host.exec(argv);
  outputs.push(r.stdout, r.stderr);
  return r;
}

const day = (d: string) => new Date(`${d}T02:00:00Z`);
const id = (d: string) => `kvol.${d.replaceAll('-', '')}T020000Z`;

beforeAll(() => {
  process.env.BORG_BASE_DIR = join(dir, 'borg-base');
  writeFileSync(repo.passphraseFile, `${PASSPHRASE}\n`, { mode: 0o600 });
  writeFileSync(dev, randomBytes(8 * MiB));
});
afterAll(() => {
  delete process.env.BORG_BASE_DIR;
  rmSync(dir, { recursive: true, force: true });
});

describe('the borg method, for real (a regular file stands for the snapshot device)', () => {
  it('init refuses a folder that is not empty and not a repository; makes one otherwise, once', async () => {
    const other: BorgRepo = { ...repo, path: join(dir, 'not-a-repo') };
    mkdirSync(other.path);
    writeFileSync(join(other.path, 'precious'), 'data');
    const refused = await run(initArgv(other));
    expect(refused.exitCode).not.toBe(0);
    expect(readdirSync(other.path)).toEqual(['precious']);

    expect((await run(initArgv(repo))).exitCode).toBe(0);
    expect(readFileSync(join(repo.path, 'config'), 'utf8')).toMatch(/\[repository\]/);
    const again = await run(initArgv(repo));
    expect(again.exitCode, again.stderr).toBe(0);
  });

  it('a second backup with 1 MiB changed stores about 1 MiB, not the whole volume', async () => {
    const first = parseCreate(await run(createArgv(repo, id('2026-11-30'), dev, day('2026-11-30'))));
    expect(first.archive).toBe(id('2026-11-30'));
    // The device's bytes, plus the archive's own metadata.
    expect(first.originalBytes).toBeGreaterThanOrEqual(8 * MiB);
    expect(first.originalBytes).toBeLessThan(8 * MiB + 64 * 1024);
    expect(first.deduplicatedBytes).toBeGreaterThan(7.9 * MiB); // random data: all new, incompressible
    const fd = openSync(dev, 'r+');
    writeSync(fd, randomBytes(MiB), 0, MiB, 3 * MiB);
    closeSync(fd);
    const second = parseCreate(await run(createArgv(repo, id('2026-12-01'), dev, day('2026-12-01'))));
    expect(second.originalBytes).toBe(first.originalBytes);
    expect(second.deduplicatedBytes).toBeGreaterThan(0.99 * MiB);
    expect(second.deduplicatedBytes).toBeLessThan(1.2 * MiB);
  });

  it('extract writes the archive back byte for byte; check passes', async () => {
    const out = join(dir, 'restored.img');
    writeFileSync(out, '');
    const r = await run(extractArgv(repo, id('2026-12-01'), out));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(sha(out)).toBe(sha(dev));
    expect((await run(checkArgv(repo, false))).exitCode).toBe(0);
  });

  it('prune keeps the retention\u2019s archives of the volume; --dry-run only lists; compact frees the space', async () => {
    for (const d of ['2026-11-28', '2026-11-29']) expect(parseCreate(await run(createArgv(repo, id(d), dev, day(d)))).archive).toBe(id(d));
    const names = async () => (JSON.parse((await run(listArgv(repo))).stdout) as { archives: { name: string }[] }).archives.map((a) => a.name).sort();
    expect(await names()).toEqual(['2026-11-28', '2026-11-29', '2026-11-30', '2026-12-01'].map(id));
    const dry = await run(pruneArgv(repo, 'kvol', { daily: 2 }, true));
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(parsePruneList(dry.stderr)).toEqual({ keep: [id('2026-12-01'), id('2026-11-30')], prune: [id('2026-11-29'), id('2026-11-28')] });
    expect(await names()).toHaveLength(4);
    const real = await run(pruneArgv(repo, 'kvol', { daily: 2 }, false));
    expect(real.exitCode, real.stderr).toBe(0);
    expect((await run(compactArgv(repo))).exitCode).toBe(0);
    expect(await names()).toEqual([id('2026-11-30'), id('2026-12-01')]);
  });

  it('backup snapshot\u2019s copy and backup restore\u2019s write, as the plans build them: the file stands in for the LVM snapshot, then for the new volume\u2019s device', async () => {
    const bsite: BackupSite = { destination: join(dir, 'dest'), remote: null, snapshotSize: { percent: 20 }, retention: { daily: 2 }, maxSinglePathMs: 7_200_000, borg: repo };
    const backupId = id('2026-12-02');
    // The copy prints how far borg read (numbers the runner takes as progress), then borg's --json answer: what its result sees.
    const copy = await run(borgCopyArgv(repo, backupId, dev));
    const progress = copy.stdout.split('\n').filter((l) => parseCopyProgress(l) !== null).map(Number);
    expect(progress.every((n) => n >= 0 && n <= 8 * MiB)).toBe(true);
    const created = parseCreate({ ...copy, stdout: copy.stdout.split('\n').filter((l) => parseCopyProgress(l) === null).join('\n') });
    expect(created.archive).toBe(backupId);
    expect(created.deduplicatedBytes).toBeLessThan(64 * 1024); // the same content as the archives before it
    const names = archiveNames((await run(listArgv(repo))).stdout);
    expect(names).toContain(backupId);

    const record: BackupRecord = { format: 1, id: backupId, volume: 'kvol', method: 'borg', time: '2026-12-02T02:00:00.000Z', sizeBytes: 8 * MiB, compressedBytes: created.compressedBytes, deduplicatedBytes: created.deduplicatedBytes, durationMs: created.durationMs, snapshotFillPercent: 0, archive: created.archive, tool: 'test' };
    const device = join(dir, 'new-volume.img');
    writeFileSync(device, Buffer.alloc(8 * MiB));
    const w = await run(restoreWriteArgv(bsite, record, device));
    expect(w.exitCode, w.stderr).toBe(0);
    expect(sha(device)).toBe(sha(dev));

    // An archive whose backup is not kept is deleted; deleting one that is not there is no error.
    expect((await run(deleteArgv(repo, backupId))).exitCode).toBe(0);
    expect(archiveNames((await run(listArgv(repo))).stdout)).not.toContain(backupId);
    const again = await run(deleteArgv(repo, backupId));
    expect(again.exitCode, again.stderr).toBe(0);
    // A restore of an archive that is gone fails (borg info, the restore's first check, says so too).
    expect((await run(infoArgv(repo, backupId))).exitCode).not.toBe(0);
    expect((await run(restoreWriteArgv(bsite, record, device))).exitCode).not.toBe(0);
  });

  it('a wrong passphrase: borg refuses, nothing is read', async () => {
    const wrong: BorgRepo = { ...repo, passphraseFile: join(dir, 'wrong-passphrase') };
    writeFileSync(wrong.passphraseFile, 'not-it\n', { mode: 0o600 });
    const r = await run(listArgv(wrong));
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/passphrase/i);
  });

  it('the passphrase is in no argv (what ps shows) and in no output; only its file is named', () => {
    expect(argvs.length).toBeGreaterThan(10);
    expect(JSON.stringify(argvs)).not.toContain(PASSPHRASE);
    expect(outputs.join('\n')).not.toContain(PASSPHRASE);
    expect(argvs.every((a) => a.join(' ').includes('BORG_PASSCOMMAND=cat -- '))).toBe(true);
    expect(existsSync(repo.passphraseFile)).toBe(true);
  });
});

describe('borg create\u2019s progress loop (a stand-in reads the device in borg\u2019s place)', () => {
  it('prints the offset of the reader\u2019s descriptor on the device, then the answer, and starts no process (no sleep, sed or readlink on its PATH)', async () => {
    // Only what the script runs once is on the PATH: mktemp, cat, rm.
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    for (const t of ['mktemp', 'cat', 'rm']) symlinkSync(`/usr/bin/${t}`, join(bin, t));
    const [, , script, name] = borgCopyArgv(repo, id('2026-12-03'), dev);
    // The stand-in opens the device, reads 3000 bytes of it, keeps it open 2.5 s, then answers as borg --json does.
    const reader = ['/bin/bash', '-c', 'exec 3< "$1"; /bin/dd bs=1000 count=3 of=/dev/null status=none <&3; /bin/sleep 2.5; echo "{\\"archive\\": {}}"', 'reader', dev];
    const r = await host.exec(['/usr/bin/env', `PATH=${bin}`, '/bin/bash', '-c', script as string, name as string, dev, ...reader]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.at(-1)).toBe('{"archive": {}}');
    const progress = lines.slice(0, -1);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((l) => parseCopyProgress(l) === 3000)).toBe(true);
  });
});
