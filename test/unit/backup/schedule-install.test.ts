import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PHASE_ENABLE, PHASE_WRITE_UNITS, UNIT_MARKER, foreignUnits, installPlan, scheduleUnits } from '../../../src/backup/schedule.js';
import { runPlan } from '../../../src/engine/runner.js';
import { ExitCode } from '../../../src/errors.js';
import { assertBuilt, enssib } from '../../support/cli.js';
import { fakePool } from '../../support/fake-hosts.js';

/**
 * `backup schedule --install`: the plan against fake hosts, then the built CLI
 * writing into a temporary unit folder with a stand-in `systemctl` (a script
 * named systemctl first on PATH that records its arguments and answers
 * is-enabled / is-active from files; the real one would change this machine).
 */
const units = scheduleUnits({ node: '/usr/bin/node', bin: '/opt/enssib/bin/enssib.js', inventory: '/srv/site/inventory.yaml', at: '02:00', unitDir: '/u' });

interface Box {
  files: Map<string, string>;
  enabled: boolean;
  active: boolean;
}

function box(over: Partial<Box> = {}): Box {
  return { files: new Map(), enabled: false, active: false, ...over };
}

async function install(b: Box, force = false) {
  const hosts = fakePool((_h, argv) => {
    if (argv[0] === 'cat') {
      const c = b.files.get(argv[2] ?? '');
      return c === undefined ? { exitCode: 1, stderr: `cat: ${argv[2]}: No such file or directory` } : { stdout: c };
    }
    if (argv.join(' ') === 'systemctl is-enabled enssib-backup.timer') return b.enabled ? { stdout: 'enabled\n' } : { exitCode: 1, stdout: 'disabled\n' };
    if (argv.join(' ') === 'systemctl is-active enssib-backup.timer') return b.active ? { stdout: 'active\n' } : { exitCode: 3, stdout: 'inactive\n' };
    return undefined;
  });
  for (const [p, c] of b.files) hosts.host('admin').files.set(p, c);
  const report = await runPlan(installPlan(units, 'admin', { force }), { mode: 'apply', concurrency: 1, hosts });
  const h = hosts.host('admin');
  return { report, changes: h.calls.filter((c) => c[0] === 'systemctl' && !c[1]?.startsWith('is-')).map((c) => c.join(' ')), files: h.files };
}

describe('backup schedule --install: the plan', () => {
  it('writes both units with the marker, reloads systemd, enables and starts the timer', async () => {
    const { report, changes, files } = await install(box());
    expect(report.exitCode).toBe(ExitCode.ok);
    expect([...files.keys()]).toEqual(['/u/enssib-backup.service', '/u/enssib-backup.timer']);
    for (const c of files.values()) expect(c.split('\n')[0]).toBe(UNIT_MARKER);
    expect(files.get('/u/enssib-backup.timer')).toContain('Persistent=true\n');
    expect(changes).toEqual(['systemctl daemon-reload', 'systemctl enable --now enssib-backup.timer']);
  });

  it('a re-run with the same units and the timer running changes nothing', async () => {
    const { report, changes } = await install(box({ files: new Map(units.map((u) => [u.path, u.content])), enabled: true, active: true }));
    expect(report.exitCode).toBe(ExitCode.ok);
    expect(changes).toEqual([]);
    expect(report.phases.map((p) => p.hosts[0]?.status)).toEqual(['unchanged', 'unchanged']);
  });

  it('a new time of day: the timer file is rewritten, systemd reloaded and the running timer restarted', async () => {
    const old = units[1].content.replace('02:00', '04:00');
    const { changes, files } = await install(box({ files: new Map([[units[0].path, units[0].content], [units[1].path, old]]), enabled: true, active: true }));
    expect(files.get('/u/enssib-backup.timer')).toContain('OnCalendar=*-*-* 02:00:00');
    expect(changes).toEqual(['systemctl daemon-reload', 'systemctl restart enssib-backup.timer']);
  });

  it('refuses to overwrite a unit enssib did not write, changing nothing; --force replaces it', async () => {
    const mine = '[Unit]\nDescription=the site\u2019s own backup\n';
    const refused = await install(box({ files: new Map([[units[1].path, mine]]) }));
    expect(refused.report.exitCode).toBe(ExitCode.failed);
    const err = refused.report.phases.find((p) => p.title === PHASE_WRITE_UNITS)?.hosts[0]?.error;
    expect(err?.message).toMatch(/^\/u\/enssib-backup\.timer exists and enssib did not write it/);
    expect(refused.files.get(units[1].path)).toBe(mine);
    expect(refused.files.has(units[0].path)).toBe(false);
    expect(refused.changes).toEqual([]);
    expect(refused.report.phases.map((p) => p.title)).not.toContain(PHASE_ENABLE);
    const forced = await install(box({ files: new Map([[units[1].path, mine]]) }), true);
    expect(forced.report.exitCode).toBe(ExitCode.ok);
    expect(forced.files.get(units[1].path)).toBe(units[1].content);
  });

  it('a unit counts as enssib\u2019s only with the marker as a whole line', () => {
    const r = (stdout: string, exitCode = 0) => ({ exitCode, stdout });
    expect(foreignUnits(units, [r(units[0].content), r('', 1)])).toEqual([]);
    expect(foreignUnits(units, [r(`# ${UNIT_MARKER}\n[Unit]\n`), r(`${UNIT_MARKER} extra\n`)])).toEqual(['/u/enssib-backup.service', '/u/enssib-backup.timer']);
  });
});

describe('backup schedule --install through the CLI, a temporary unit folder and a stand-in systemctl', () => {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-schedule-'));
  const bin = join(dir, 'bin');
  const log = join(dir, 'systemctl-stand-in.log');
  const env = { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: dir };
  const calls = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : []);

  beforeAll(() => {
    assertBuilt();
    mkdirSync(bin);
    // The stand-in for systemctl: records its arguments; the timer is enabled and active once `enable --now` ran.
    writeFileSync(
      join(bin, 'systemctl'),
      `#!/bin/sh\necho "$*" >> '${log}'\ncase "$1" in\n  enable) touch '${dir}/on' ;;\n  is-enabled) [ -e '${dir}/on' ] && echo enabled || { echo disabled; exit 1; } ;;\n  is-active) [ -e '${dir}/on' ] && echo active || { echo inactive; exit 3; } ;;\nesac\nexit 0\n`,
    );
    chmodSync(join(bin, 'systemctl'), 0o755);
  });

  it('installs, then a re-run changes nothing', async () => {
    const units = join(dir, 'units');
    mkdirSync(units);
    const r = await enssib(['backup', 'schedule', '--install', '--unit-dir', units, '--at', '03:30', '--yes'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(units, 'enssib-backup.timer'), 'utf8')).toContain('OnCalendar=*-*-* 03:30:00\nPersistent=true\n');
    expect(readFileSync(join(units, 'enssib-backup.service'), 'utf8')).toMatch(/^ExecStart=\/\S+ \/\S+\/bin\/enssib\.js -i \/\S+\/inventory\.yaml backup snapshot --all$/m);
    expect(statSync(join(units, 'enssib-backup.timer')).mode & 0o777).toBe(0o644);
    expect(calls().filter((c) => !c.startsWith('is-'))).toEqual(['daemon-reload', 'enable --now enssib-backup.timer']);
    const again = await enssib(['backup', 'schedule', '--install', '--unit-dir', units, '--at', '03:30', '--yes'], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(calls().filter((c) => !c.startsWith('is-'))).toEqual(['daemon-reload', 'enable --now enssib-backup.timer']);
  });

  it('refuses a unit enssib did not write (exit 1, unchanged); --force replaces it', async () => {
    const units = join(dir, 'foreign');
    mkdirSync(units);
    writeFileSync(join(units, 'enssib-backup.service'), '[Service]\nExecStart=/usr/local/bin/site-backup\n');
    // Refused before the question: no terminal and no --yes still says why, not "needs confirmation".
    const r = await enssib(['backup', 'schedule', '--install', '--unit-dir', units], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/enssib-backup\.service exists and enssib did not write it/);
    expect(readFileSync(join(units, 'enssib-backup.service'), 'utf8')).toBe('[Service]\nExecStart=/usr/local/bin/site-backup\n');
    expect(existsSync(join(units, 'enssib-backup.timer'))).toBe(false);
    const f = await enssib(['backup', 'schedule', '--install', '--unit-dir', units, '--yes', '--force'], { env });
    expect(f.code, f.stderr).toBe(0);
    expect(readFileSync(join(units, 'enssib-backup.service'), 'utf8').split('\n')[0]).toBe(UNIT_MARKER);
  });

  it('a dry run prints the plan and writes nothing', async () => {
    const units = join(dir, 'dry');
    mkdirSync(units);
    const before = calls().length;
    const r = await enssib(['backup', 'schedule', '--install', '--unit-dir', units, '--dry-run'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`write ${units}/enssib-backup.timer (mode 0644`);
    expect(r.stdout).toContain('systemctl enable --now enssib-backup.timer');
    expect(existsSync(join(units, 'enssib-backup.timer'))).toBe(false);
    expect(calls().length).toBe(before);
  });

  const bad: [string[], RegExp][] = [
    [['--install'], /this needs confirmation: run it again with --yes/],
    [['--install', '--yes', '--unit-dir', '/nonexistent/enssib-units'], /--unit-dir .*not a folder/],
    [['--install', '--yes', '--unit-dir', '/tmp/my units'], /cannot go into a systemd unit as it is/],
    [['--install', '--yes', '--unit-dir', '/tmp/%h'], /cannot go into a systemd unit as it is/],
    [['--install', '--yes', '--unit-dir', '/tmp/x\ny'], /cannot go into a systemd unit as it is/],
    [['--force'], /--unit-dir and --force go with --install/],
    [['--unit-dir', '/tmp'], /--unit-dir and --force go with --install/],
    [['--install', '--yes', '--at', '25:00'], /--at "25:00": expected a time of day HH:MM/],
  ];
  for (const [args, msg] of bad) {
    it(`refused before anything is written: ${args.join(' ').replace(/\n/g, '\\n')}`, async () => {
      const before = calls().length;
      const r = await enssib(['backup', 'schedule', ...args], { env });
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(calls().length).toBe(before);
    });
  }
});
