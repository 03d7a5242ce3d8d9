import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkPathsArgv, parseCheckPaths, parseMultipath, parseSessions, verifyPaths } from '../../../src/storage/initiator.js';

/**
 * The path check's remote script (checkPathsArgv) run by a local sh against
 * stand-ins for iscsiadm, multipath, udevadm and dmsetup that answer with the
 * kernel lab's recorded outputs and log every call.
 */
const fx = (f: string) => join(import.meta.dirname, 'fixtures', f);
const IQN = 'iqn.2016-04.fr.enssib:smoke';
const P1 = '10.66.6.1:3260';
const P2 = '10.66.6.2:3260';
const MAP = '36001405e0b96a6492d74e4c8a4876db0';
const dir = mkdtempSync(join(tmpdir(), 'enssib-check-paths-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const stub = (name: string, body: string) => {
  writeFileSync(join(dir, name), `#!/bin/sh\necho "${name} $*" >>"$LOG"\n${body}\n`);
  chmodSync(join(dir, name), 0o755);
};
stub('iscsiadm', `case "$*" in *--login) [ "$3 $4" = "-T ${IQN}" ] || exit 1; case "$*" in *"$FAIL_LOGIN"*) exit 8 ;; esac; exit 0 ;; *--logout) exit 0 ;; "-m session -P 3") cat "${fx('iscsiadm-session-P3.txt')}" ;; *) exit 1 ;; esac`);
stub('multipath', `case "$1" in -ll) cat "${fx('multipath-ll-kernel.txt')}" ;; -f) exit 0 ;; *) exit 1 ;; esac`);
stub('udevadm', 'exit 0');
stub('dmsetup', 'exit "${DM_RC:-0}"');

function run(portals: string[], flush: boolean, env: Record<string, string> = {}) {
  const log = join(dir, `log-${Math.random().toString(36).slice(2)}`);
  writeFileSync(log, '');
  const [sh, ...args] = checkPathsArgv(IQN, portals, 3, flush);
  const r = spawnSync(sh as string, args, { encoding: 'utf8', env: { PATH: `${dir}:${process.env.PATH ?? ''}`, LOG: log, FAIL_LOGIN: 'none', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, calls: readFileSync(log, 'utf8').trim().split('\n') };
}

describe('the path check as one remote script', () => {
  it('logs in through both portals, prints the sessions and maps, logs out and flushes the map left', () => {
    const r = run([P1, P2], true);
    expect(r.code, r.stderr).toBe(0);
    const report = parseCheckPaths(r.stdout);
    expect(report).not.toBeNull();
    const v = verifyPaths(IQN, [P1, P2], parseSessions(report!.sessions), parseMultipath(report!.multipath.stdout));
    expect(v.ok && v.map.wwid).toBe(MAP);
    expect(r.calls).toEqual([
      `iscsiadm -m node -T ${IQN} -p ${P1} --login`,
      `iscsiadm -m node -T ${IQN} -p ${P2} --login`,
      'udevadm settle --timeout=10',
      'iscsiadm -m session -P 3',
      'multipath -ll',
      `iscsiadm -m node -T ${IQN} -p ${P1} --logout`,
      `iscsiadm -m node -T ${IQN} -p ${P2} --logout`,
      'udevadm settle --timeout=30',
      `dmsetup info ${MAP}`,
      `multipath -f ${MAP}`,
    ]);
  });

  it('does not flush a map multipathd has removed, nor one another session (kubelet’s) still uses', () => {
    expect(run([P1, P2], true, { DM_RC: '1' }).calls.filter((c) => c.startsWith('multipath -f'))).toEqual([]);
    const kept = run([P2], false);
    expect(kept.code).toBe(0);
    expect(kept.calls.filter((c) => / --log(in|out)$/.test(c) || c.startsWith('multipath -f'))).toEqual([`iscsiadm -m node -T ${IQN} -p ${P2} --login`, `iscsiadm -m node -T ${IQN} -p ${P2} --logout`]);
  });

  it('a failed login: its exit code, and the session already opened is logged out', () => {
    const r = run([P1, P2], true, { FAIL_LOGIN: P2 });
    expect(r.code).toBe(8);
    expect(parseCheckPaths(r.stdout)).toBeNull();
    expect(r.calls.filter((c) => c.startsWith('iscsiadm'))).toEqual([
      `iscsiadm -m node -T ${IQN} -p ${P1} --login`,
      `iscsiadm -m node -T ${IQN} -p ${P2} --login`,
      `iscsiadm -m node -T ${IQN} -p ${P1} --logout`,
    ]);
  });
});
