import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { borgArgv } from '../../../src/backup/borg.js';
import type { BackupRecord } from '../../../src/backup/catalogue.js';
import { listCommand, pruneCommand, verifyCommand } from '../../../src/backup/usecases.js';
import { createContext } from '../../../src/context.js';
import { ConfigError, ExitCode, InterruptedError, OperationError } from '../../../src/errors.js';
import { fileInventory } from '../../../src/inventory/load.js';
import { createOutput } from '../../../src/ui/output.js';
import { createPrompter } from '../../../src/ui/prompt.js';
import { fakePool } from '../../support/fake-hosts.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';

/**
 * `backup list|verify|prune` over a catalogue that holds both kinds of backup:
 * each record is handled by its method (fake hosts answer as sha256sum and
 * borg 1.2 do). The borg commands carry the passphrase file's path only.
 */
const PASS = '/root/enssib-borg.passphrase';
const REPO = { path: '/srv/backup/borg', remote: null, passphraseFile: PASS };
const SHA = 'e'.repeat(64);
const ids = ['kvol.20261201T020000Z', 'kvol.20261202T020000Z', 'kvol.20261203T020000Z', 'kvol.20261204T020000Z'] as const;
const time = (id: string) => `${id.slice(5, 9)}-${id.slice(9, 11)}-${id.slice(11, 13)}T02:00:00.000Z`;
const common = (id: string) => ({ format: 1 as const, id, volume: 'kvol', time: time(id), sizeBytes: 268435456, compressedBytes: 200000000, durationMs: 1500, snapshotFillPercent: 0.5, tool: 'enssib 0.1.0' });
const records: BackupRecord[] = [
  { ...common(ids[0]), method: 'image', sha256: SHA, file: `${ids[0]}.img.zst` },
  ...ids.slice(1).map((id): BackupRecord => ({ ...common(id), method: 'borg', archive: id, deduplicatedBytes: 1048576 })),
];

interface World {
  checkFails?: boolean;
  /** sha256sum never answers (a large image being read): only a cancel ends it. */
  sha256Hangs?: boolean;
  /** Called when sha256sum starts. */
  onSha256?: () => void;
  /** Archives `borg list` has. */
  archives: string[];
}

const ok = (stdout = '', stderr = '') => ({ exitCode: 0, stdout, stderr, durationMs: 1 });

function responder(w: World) {
  return (_host: string, argv: readonly string[]) => {
    if (argv[3] === 'enssib-backup-list') return ok(records.map((r) => `/srv/backup/kvol/${r.id}.json\0${JSON.stringify(r)}\0`).join(''));
    if (argv[0] === 'sha256sum') {
      w.onSha256?.();
      return w.sha256Hangs ? new Promise<undefined>(() => undefined) : ok(`${SHA}  ${argv[2]}\n`);
    }
    if (argv[0] !== 'env') return ok();
    const sub = argv[argv.indexOf('borg') + 1];
    if (sub === 'check') return w.checkFails ? { exitCode: 1, stdout: '', stderr: 'Index object count mismatch.\nCompleted repository check, errors found.', durationMs: 1 } : ok();
    if (sub === 'list') return ok(JSON.stringify({ archives: w.archives.map((name) => ({ name })) }));
    if (sub === 'prune' && argv.includes('--dry-run')) return ok('', `Keeping archive (rule: daily #1):     ${ids[3]}  Fri, 2026-12-04 02:00:00 [ab]\nKeeping archive (rule: daily #2):     ${ids[2]}  Thu, 2026-12-03 02:00:00 [cd]\nWould prune:                          ${ids[1]}  Wed, 2026-12-02 02:00:00 [ef]\n`);
    if (sub === 'prune') return ok('', `Keeping archive (rule: daily #1):     ${ids[3]}\nKeeping archive (rule: daily #2):     ${ids[2]}\nPruning archive (1/1):                ${ids[1]}  Wed, 2026-12-02 02:00:00 [ef]\n`);
    return ok();
  };
}

async function run(fn: typeof verifyCommand, args: (string | string[])[], w: World, over: { dryRun?: false | 'server'; method?: string; signal?: AbortSignal } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-borg-uc-'));
  const inventory = join(dir, 'inventory.yaml');
  writeFileSync(inventory, `${VALID_INVENTORY}backup:\n  destination: /srv/backup\n  method: ${over.method ?? 'borg'}\n  borg: { passphraseFile: ${PASS} }\n  retention: { daily: 2 }\n`);
  const stdout = new PassThrough();
  let text = '';
  stdout.on('data', (b: Buffer) => (text += b.toString()));
  const hosts = fakePool(responder(w));
  const ctx = createContext({
    opts: { inventory, dryRun: over.dryRun ?? false, yes: true, output: 'text', concurrency: 10, color: false, verbose: false },
    out: createOutput({ format: 'text', color: false, verbose: false, stdout, stderr: new PassThrough() }),
    prompt: createPrompter({ yes: true, isTTY: false }),
    env: { HOME: dir },
    cwd: dir,
    renderer: 'silent',
    inventory: fileInventory(inventory, { HOME: dir }),
    hosts: () => hosts,
    ...(over.signal ? { signal: over.signal } : {}),
  });
  let error: unknown = null;
  const code = await fn(ctx, { args, opts: {} }).catch((e: unknown) => ((error = e), null));
  const { calls, timeouts } = hosts.host('data1');
  return { code, error, lines: text.trimEnd().split('\n'), calls, timeouts, borg: calls.filter((c) => c[0] === 'env').map((c) => c.slice(c.indexOf('borg')).join(' ')) };
}

describe('backup verify by method', () => {
  it('an image: its sha256 recomputed; the borg backups: one borg check --verify-data, and each archive found in borg list', async () => {
    const r = await run(verifyCommand, [], { archives: [...ids.slice(1)] });
    expect(r.error).toBeNull();
    expect(r.code).toBe(0);
    expect(r.calls.filter((c) => c[0] === 'sha256sum')).toEqual([['sha256sum', '--', `/srv/backup/kvol/${ids[0]}.img.zst`]]);
    expect(r.borg).toEqual(['borg check --verify-data /srv/backup/borg', 'borg list --json /srv/backup/borg']);
    expect(r.calls.filter((c) => c[0] === 'env')).toEqual([borgArgv(REPO, ['check', '--verify-data', '/srv/backup/borg']), borgArgv(REPO, ['list', '--json', '/srv/backup/borg'])]);
    expect(r.lines).toEqual(ids.map((id) => `${id}: ok`));
  });

  it('the checksums and borg check read everything: they get the copy\u2019s deadline (24 h), not ssh.commandTimeout', async () => {
    const r = await run(verifyCommand, [], { archives: [...ids.slice(1)] });
    expect(r.code).toBe(0);
    const reads = r.calls.flatMap((c, i) => (c[0] === 'sha256sum' || c[0] === 'env' ? [r.timeouts[i]] : []));
    expect(reads).toEqual([24 * 3600_000, 24 * 3600_000, 24 * 3600_000]);
    // The catalogue read before them keeps the session's limit.
    expect(r.timeouts[r.calls.findIndex((c) => c[3] === 'enssib-backup-list')]).toBeUndefined();
  });

  it('interrupted while a checksum runs: the read is cancelled on the host, nothing is reported as ok, exit 130', async () => {
    const ac = new AbortController();
    const r = await run(verifyCommand, [], { archives: [...ids.slice(1)], sha256Hangs: true, onSha256: () => setTimeout(() => ac.abort(), 10) }, { signal: ac.signal });
    expect(r.error).toBeInstanceOf(InterruptedError);
    expect((r.error as InterruptedError).exitCode).toBe(ExitCode.interrupted);
    expect(r.calls.filter((c) => c[0] === 'sha256sum')).toHaveLength(1);
    // borg check never started once the read was cancelled
    expect(r.borg).toEqual([]);
    expect(r.lines.join('\n')).not.toMatch(/: ok/);
  });

  it('borg check finds errors: every borg backup is reported, the image is still ok; exit 1', async () => {
    const r = await run(verifyCommand, [], { archives: [...ids.slice(1)], checkFails: true });
    expect(r.error).toBeInstanceOf(OperationError);
    expect((r.error as Error).message).toBe('3 of 4 backup(s) do not match the catalogue');
    expect(r.lines[0]).toBe(`${ids[0]}: ok`);
    expect(r.lines[1]).toBe(`${ids[1]}: MISMATCH: borg check --verify-data of /srv/backup/borg failed (exit code 1: Completed repository check, errors found.)`);
  });

  it('an archive missing from the repository is a mismatch of that backup only', async () => {
    const r = await run(verifyCommand, [[ids[2], ids[3]]], { archives: [ids[3]] });
    expect(r.error).toBeInstanceOf(OperationError);
    expect(r.lines).toEqual([`${ids[2]}: MISMATCH: its archive ${ids[2]} is not in /srv/backup/borg`, `${ids[3]}: ok`]);
    expect(r.calls.some((c) => c[0] === 'sha256sum')).toBe(false);
  });

  it('borg backups while the inventory says image: a configuration error, nothing run', async () => {
    const r = await run(verifyCommand, [], { archives: [] }, { method: 'image' });
    expect(r.error).toBeInstanceOf(ConfigError);
    expect((r.error as Error).message).toMatch(/backup\.method is not borg: cannot verify them/);
    expect(r.borg).toEqual([]);
  });
});

describe('backup prune by method', () => {
  it('--dry-run=server: borg prune --dry-run --list per volume says what would go; nothing is removed', async () => {
    const r = await run(pruneCommand, [], { archives: [...ids.slice(1)] }, { dryRun: 'server' });
    expect(r.error).toBeNull();
    expect(r.borg).toEqual(["borg prune --dry-run --list --glob-archives kvol.* --keep-daily 2 /srv/backup/borg"]);
    expect(r.lines).toEqual(['Retention daily 2, weekly 0, monthly 0: keep 3, remove 1.', `  keep   ${ids[0]} (daily 1)`, `  keep   ${ids[3]} (borg prune)`, `  keep   ${ids[2]} (borg prune)`, `  remove ${ids[1]}`]);
    expect(r.calls.some((c) => c[0] === 'rm' || (c[0] === 'sh' && c.at(-1)?.includes('rm ')))).toBe(false);
  });

  it('--yes: borg prune, then the records of the archives it pruned, then borg compact', async () => {
    const r = await run(pruneCommand, [], { archives: [...ids.slice(1)] });
    expect(r.error).toBeNull();
    expect(r.code).toBe(0);
    const order = r.calls.filter((c) => c[0] === 'env' || c[0] === 'rm').map((c) => (c[0] === 'env' ? c.slice(c.indexOf('borg'), c.indexOf('borg') + 2).join(' ') + (c.includes('--dry-run') ? ' --dry-run' : '') : c.join(' ')));
    expect(order).toEqual(['borg prune --dry-run', 'borg prune', `rm -f -- /srv/backup/kvol/${ids[1]}.json`, 'borg compact']);
  });
});

describe('backup list', () => {
  it('both methods in one table: METHOD, and ADDED (the image, or what borg stored)', async () => {
    const r = await run(listCommand, [], { archives: [] });
    expect(r.lines[0]?.split(/\s{2,}/)).toEqual(['BACKUP', 'VOLUME', 'METHOD', 'TIME', 'SIZE', 'COMPRESSED', 'ADDED', 'COPY', 'SNAPSHOT USED', 'SHA256']);
    expect(r.lines[1]).toMatch(new RegExp(`^${ids[0]}\\s+kvol\\s+image\\s+\\S+\\s+256M\\s+190\\.73M\\s+190\\.73M\\s+1\\.5 s\\s+0\\.5%\\s+eeeeeeeeeeee$`));
    expect(r.lines[2]).toMatch(new RegExp(`^${ids[1]}\\s+kvol\\s+borg\\s+\\S+\\s+256M\\s+190\\.73M\\s+1M\\s+1\\.5 s\\s+0\\.5%\\s+-$`));
  });
});
