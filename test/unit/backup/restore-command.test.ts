import { join } from 'node:path';
import { Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { restoreCommand } from '../../../src/backup/restore-command.js';
import { createContext, type GlobalOptions } from '../../../src/context.js';
import { EnssibError, ExitCode } from '../../../src/errors.js';
import { fileInventory } from '../../../src/inventory/load.js';
import { createOutput } from '../../../src/ui/output.js';
import { createPrompter } from '../../../src/ui/prompt.js';
import { assertBuilt, enssib } from '../../support/cli.js';
import { fakePool } from '../../support/fake-hosts.js';

/**
 * `enssib backup restore` bad and hostile input. Names and ids are refused by
 * the built CLI before anything runs; what needs the catalogue and the volume
 * group (a backup that does not exist, a target that exists) is refused by the
 * use case on fake hosts, read-only (--dry-run=server), before any plan runs.
 */

const ROOT = join(import.meta.dirname, '../../..');
const ID = 'mail.20261203T020000Z';
const record = (id: string, volume: string) =>
  JSON.stringify({ format: 1, id, volume, method: 'image', time: '2026-12-03T02:00:00.000Z', sizeBytes: 268435456, compressedBytes: 1234, sha256: 'c'.repeat(64), durationMs: 1500, snapshotFillPercent: 0, file: `${id}.img.zst`, tool: 'enssib 0.1.0' });

interface World {
  catalogue: string;
  lvs: string[];
}

function ctxFor(w: World, dryRun: GlobalOptions['dryRun'] = 'server') {
  let err = '';
  const sink = new Writable({ write: (c: Buffer, _e, cb) => ((err += c.toString()), cb()) });
  const hosts = fakePool((_h, argv) => {
    if (argv[3] === 'enssib-backup-list') return { stdout: w.catalogue };
    if (argv[0] === 'lvs') return { stdout: JSON.stringify({ report: [{ lv: w.lvs.map((n) => ({ lv_name: n, vg_name: 'vg_cluster', lv_size: '268435456', lv_tags: 'enssib,enssib_id_a1a93ec0062020a80f091605229042ee,enssib_fs_ext4', lv_attr: '-wi-ao----', lv_active: 'active', lv_path: '', lv_device_open: '' })) }] }) };
    return undefined;
  });
  const opts: GlobalOptions = { inventory: join(ROOT, 'inventory.yaml'), dryRun, yes: false, output: 'text', concurrency: 2, color: false, verbose: false };
  const ctx = createContext({
    opts,
    out: createOutput({ format: 'text', color: false, verbose: false, stdout: sink, stderr: sink }),
    prompt: createPrompter({ yes: false, isTTY: false }),
    cwd: ROOT,
    renderer: 'silent',
    inventory: fileInventory(join(ROOT, 'inventory.yaml'), { HOME: ROOT }),
    hosts: () => hosts,
  });
  return { ctx, hosts, out: () => err };
}

async function refused(w: World, args: string[], opts: Record<string, unknown> = {}): Promise<EnssibError> {
  const { ctx, hosts } = ctxFor(w);
  const e = await restoreCommand(ctx, { args, opts }).then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(EnssibError);
  // Read-only: nothing but the catalogue and lvs was asked.
  const asked = ['data1', 'data2', 'node01'].flatMap((h) => hosts.host(h).calls.map((c) => (c[0] === 'sh' ? c[3] : c[0])));
  expect(asked.every((c) => c === 'enssib-backup-list' || c === 'lvs')).toBe(true);
  return e as EnssibError;
}

const catalogue = (...ids: [string, string][]) => ids.map(([id, v]) => `/srv/backup/${v}/${id}.json\0${record(id, v)}\0`).join('');

describe('backup restore: what the catalogue and the volume group refuse (exit 2, nothing changed)', () => {
  const w: World = { catalogue: catalogue([ID, 'mail']), lvs: ['mail'] };

  it('a backup id that does not exist', async () => {
    const e = await refused(w, ['mail', 'mail.20200101T000000Z']);
    expect(e.exitCode).toBe(ExitCode.usage);
    expect(e.message).toBe('no backup mail.20200101T000000Z in the catalogue');
  });

  it('an unknown volume (no backup of it)', async () => {
    const e = await refused(w, ['ghost', 'ghost.20261203T020000Z'], { to: 'ghost-old' });
    expect(e.exitCode).toBe(ExitCode.usage);
    expect(e.message).toBe('no backup ghost.20261203T020000Z in the catalogue');
  });

  it('a restore target that exists, without --force', async () => {
    const e = await refused({ ...w, lvs: ['mail', 'mail-old'] }, ['mail', ID], { to: 'mail-old' });
    expect(e.exitCode).toBe(ExitCode.usage);
    expect(e.message).toContain('volume "mail-old" exists');
    expect(e.details.join('\n')).toMatch(/--to NAME.*--force/);
  });

  it('--force over a volume that does not exist', async () => {
    const e = await refused(w, ['mail', ID], { to: 'mail-old', force: true });
    expect(e.exitCode).toBe(ExitCode.usage);
    expect(e.message).toContain('no volume "mail-old" to restore over');
  });

  it('a corrupted catalogue: an error naming the file, nothing read further', async () => {
    const e = await refused({ ...w, catalogue: `/srv/backup/mail/${ID}.json\0{"format":1,\0` }, ['mail', ID], { to: 'mail-old' });
    expect(e.exitCode).toBe(ExitCode.failed);
    expect(e.message).toContain(`catalogue record /srv/backup/mail/${ID}.json is corrupted`);
  });

  it('without --to, the new volume is <volume>-r<MMDDhhmm> (it fits SCST\'s 16 characters)', async () => {
    const { ctx, out } = ctxFor({ catalogue: catalogue([ID, 'mail']), lvs: ['mail'] });
    // The plan then runs as a server dry run on the fake hosts, which answer nothing useful: it stops at the read, having changed nothing.
    const e = await restoreCommand(ctx, { args: ['mail', ID], opts: {} }).then(() => null, (x: unknown) => x as EnssibError);
    expect(e?.message).toMatch(/nothing was changed/);
    expect(out()).toContain(`backup restore ${ID} to mail-r12030200`);
  });
});

describe('backup restore: names, ids and options refused by the CLI before anything runs (exit 2)', () => {
  beforeAll(() => assertBuilt());
  const cases: [string[], RegExp][] = [
    [['backup', 'restore', 'mail'], /missing required argument 'backup'/],
    [['backup', 'restore', '', ID], /volume/],
    [['backup', 'restore', 'mail;reboot', ID], /volume/],
    [['backup', 'restore', '../mail', ID], /volume/],
    [['backup', 'restore', 'mäil', ID], /volume/],
    [['backup', 'restore', 'a'.repeat(5000), ID], /volume/],
    [['backup', 'restore', 'mail', ''], /is not a backup id/],
    [['backup', 'restore', 'mail', '../../etc/passwd'], /is not a backup id/],
    [['backup', 'restore', 'mail', `${ID}$(reboot)`], /is not a backup id/],
    [['backup', 'restore', 'mail', `${ID}\n`], /is not a backup id/],
    [['backup', 'restore', 'mail', 'm'.repeat(100000)], /is not a backup id/],
    [['backup', 'restore', 'mail', 'ldap.20261203T020000Z'], /backup ldap\.20261203T020000Z is a backup of volume "ldap", not of "mail"/],
    [['backup', 'restore', 'mail', ID, '--to', '../x'], /volume name "\.\.\/x" is not valid/],
    [['backup', 'restore', 'mail', ID, '--to', 'x y'], /is not valid/],
    [['backup', 'restore', 'mail', ID, '--to', 'münchen'], /is not valid/],
    [['backup', 'restore', 'mail', ID, '--to', ''], /is not valid|volume/],
    [['backup', 'restore', 'mail', ID, '--to', 'a'.repeat(17)], /at most 16/],
    [['backup', 'restore', 'postgres', 'postgres.20261203T020000Z'], /"postgres-r12030200", cannot be used/],
    [['backup', 'restore', 'mail', ID, '--lock-wait', '1h'], /--lock-wait "1h": expected a number of seconds/],
    [['backup', 'restore', 'mail', ID, '--force', '--keep-on-failure'], /--keep-on-failure is for a new volume/],
  ];
  for (const [args, msg] of cases) {
    it(JSON.stringify(args.slice(2)).slice(0, 80), async () => {
      const r = await enssib([...args, '--dry-run'], { env: { PATH: process.env.PATH ?? '' } });
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  }

  it('a client dry run reads nothing and says how to see the exact commands', async () => {
    const r = await enssib(['backup', 'restore', 'mail', ID, '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('enssib-backup-list /srv/backup');
    expect(r.stdout).toContain(`from the record of ${ID} (its size and sha256), create volume mail-r12030200`);
    expect(r.stdout).toContain('--dry-run=server');
  });
});
