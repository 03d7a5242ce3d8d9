import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BIN, assertBuilt } from '../../support/cli.js';
import { volumeLab } from './volume-lab.js';

/**
 * The storage lock and the faults of the volume commands over real OpenSSH
 * (hosts lab, stand-in storage binaries): a held lock, two concurrent
 * commands, a storage server unreachable before any change, a storage server
 * lost after lvcreate (undone), a worker unreachable during discovery.
 */
const v = volumeLab();
const paused = new Set<string>();

beforeAll(() => {
  assertBuilt();
  v.install();
});
beforeEach(() => v.reset());
afterEach(() => {
  for (const h of paused) v.unpause(h);
  paused.clear();
  v.configure([]);
});
afterAll(() => v.uninstall());

function pause(h: string): void {
  v.pause(h);
  paused.add(h);
}

describe('the storage lock on the metadata host', () => {
  it('fails, naming who holds it, when it stays held; nothing is changed', async () => {
    v.exec('data1', 'mkdir -p -m 0700 /run/enssib');
    v.writeFile('data1', '/run/enssib/storage.lock', 'token=0123abcd user=alice host=laptop pid=4242 since=2026-11-28T10:00:00.000Z command=enssib volume delete old\n');
    const t0 = Date.now();
    const r = await v.enssib(['volume', 'create', 'mail', '1G', '--lock-wait', '2']);
    expect(r.code).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
    expect(r.stderr).toContain('error: the storage lock on data1 is held by alice@laptop (pid 4242) since 2026-11-28T10:00:00.000Z: enssib volume delete old');
    expect(r.stderr).toContain('Nothing was changed.');
    expect(r.stderr).toContain('enssib lock status — and remove it with: enssib lock break');
    for (const h of v.hosts) expect(v.calls(h)).toEqual([]); // not even the facts were read
    expect(v.file('data1', '/run/enssib/storage.lock')).toContain('user=alice'); // someone else's lock stays
  });

  it('serializes two commands started at once: the second waits, both succeed, their steps never interleave', async () => {
    v.configure(['DELAY=0.1']);
    const env = { NO_COLOR: '1', CI: '1' };
    const run = (name: string) => execa('node', [BIN, '-i', v.lab.inventoryFile, 'volume', 'create', name, '1G'], { env, reject: false, timeout: 300_000 });
    const [a, b] = await Promise.all([run('alpha'), run('beta')]);
    expect(a.exitCode, String(a.stderr)).toBe(0);
    expect(b.exitCode, String(b.stderr)).toBe(0);
    const d1 = v.lines('data1');
    const idx = (re: RegExp) => d1.findIndex((l) => re.test(l));
    const reads = d1.map((l, i) => (l.startsWith('vgs ') ? i : -1)).filter((i) => i >= 0);
    expect(reads).toHaveLength(2);
    const first = idx(/^lvcreate .*--name (alpha|beta) /);
    const firstName = /--name (\w+)/.exec(d1[first] as string)?.[1];
    const second = idx(new RegExp(`^lvcreate .*--name ${firstName === 'alpha' ? 'beta' : 'alpha'} `));
    // read(1) < lvcreate(1) < apply(1) < read(2) < lvcreate(2)
    const applies = d1.map((l, i) => (l === 'scstadmin -noprompt -config /etc/scst.conf' ? i : -1)).filter((i) => i >= 0);
    expect(reads[0]).toBeLessThan(first);
    expect(first).toBeLessThan(applies[0] as number);
    expect(applies[0]).toBeLessThan(reads[1] as number);
    expect(reads[1]).toBeLessThan(second);
    expect(v.exec('data1', 'test -e /run/enssib/storage.lock && echo held || echo free').trim()).toBe('free');
  });
});

describe('lock status and lock break over real ssh', () => {
  const LOCK = '/run/enssib/storage.lock';
  /** Starts `volume create` held in lvcreate; resolves once the lock is taken and lvcreate runs. */
  async function holder(name: string) {
    v.configure(['DELAY_lvcreate=6']);
    const child = execa('node', [BIN, '-i', v.lab.inventoryFile, 'volume', 'create', name, '1G'], { env: { NO_COLOR: '1', CI: '1' }, reject: false, timeout: 300_000 });
    for (let i = 0; i < 150 && !v.lines('data1', 'lvcreate').length; i++) await new Promise((res) => setTimeout(res, 100));
    const text = v.file('data1', LOCK);
    const m = /^session=(\d+) (\d+)$/m.exec(text);
    return { child, text, pid: Number(m?.[1] ?? 0) };
  }

  it('records the holder and its ssh session; break is refused while that session is alive', async () => {
    const h = await holder('alpha');
    expect(h.text).toMatch(/^token=[0-9a-f]{16} user=\S+ host=\S+ pid=\d+ since=\S+ command=.*volume create alpha 1G\nsession=\d+ \d+\n$/);
    expect(v.exec('data1', `cat /proc/${h.pid}/comm`).trim()).toMatch(/^sshd(-session)?$/);
    expect(v.exec('data1', 'stat -c "%U %a" /run/enssib').trim()).toBe('root 700');
    const st = await v.enssib(['lock', 'status']);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toMatch(/The storage lock on data1 \(\/run\/enssib\/storage.lock\) is held by \S+ \(pid \d+\) since \S+: .*volume create alpha 1G\./);
    expect(st.stdout).toContain(`its ssh session (sshd pid ${h.pid}) on data1 is alive: the command is running`);
    const br = await v.enssib(['lock', 'break', '--yes']);
    expect(br.code).toBe(1);
    expect(br.stderr).toContain(`whose ssh session (sshd pid ${h.pid} on data1) is still alive`);
    expect(v.file('data1', LOCK)).toBe(h.text);
    const done = await h.child;
    expect(done.exitCode, String(done.stderr)).toBe(0);
    expect(v.exec('data1', `test -e ${LOCK} && echo held || echo free`).trim()).toBe('free');
  }, 120_000);

  it('a lock whose holder died with its session is stale: status says so, break asks, then removes it', async () => {
    const h = await holder('beta');
    h.child.kill('SIGKILL');
    await h.child;
    v.exec('data1', `kill ${h.pid}`); // the holder's connection is gone (its ssh master would end after ControlPersist)
    for (let i = 0; i < 50 && v.exec('data1', `test -d /proc/${h.pid} && echo up || echo gone`).trim() === 'up'; i++) await new Promise((res) => setTimeout(res, 100));
    expect(v.file('data1', LOCK)).toBe(h.text); // left behind
    const st = await v.enssib(['lock', 'status', '-o', 'json']);
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({ lock: { host: 'data1', file: LOCK, held: true, sessionPid: h.pid, alive: 'no' } });
    const noYes = await v.enssib(['lock', 'break']);
    expect(noYes.code).toBe(2);
    expect(noYes.stderr).toContain('this needs confirmation: run it again with --yes');
    const br = await v.enssib(['lock', 'break', '--yes']);
    expect(br.code, br.stdout + br.stderr).toBe(0);
    expect(br.stdout).toContain('The storage lock on data1 is removed.');
    expect(v.exec('data1', `test -e ${LOCK} && echo held || echo free`).trim()).toBe('free');
    const free = await v.enssib(['lock', 'status']);
    expect(free.stdout).toContain('The storage lock on data1 is free (/run/enssib/storage.lock).');
  }, 120_000);
});

describe('faults', () => {
  it('refuses when a storage server is unreachable before any change: nothing changed, lock released', async () => {
    pause('data2');
    const r = await v.enssib(['volume', 'create', 'mail', '1G']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: storage server data2 is unreachable: nothing was changed');
    expect(r.stderr).toMatch(/\n {2}data2: connection to data2 timed out\n/);
    expect(v.lines('data1').join('\n')).not.toMatch(/lvcreate|scstadmin -noprompt -config/);
    for (const w of v.workers) expect(v.calls(w)).toEqual([]);
    expect(v.exec('data1', 'test -e /run/enssib/storage.lock && echo held || echo free').trim()).toBe('free');
  });

  it('undoes lvcreate when the other storage server is lost right after it', async () => {
    v.configure(['DELAY_lvcreate=3']);
    const child = execa('node', [BIN, '-i', v.lab.inventoryFile, 'volume', 'create', 'mail', '1G'], { env: { NO_COLOR: '1', CI: '1' }, reject: false, timeout: 300_000 });
    // pause data2 once lvcreate has started on data1
    for (let i = 0; i < 100 && !v.lines('data1', 'lvcreate').length; i++) await new Promise((res) => setTimeout(res, 100));
    expect(v.lines('data1', 'lvcreate')).toHaveLength(1);
    pause('data2');
    const r = await child;
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(1);
    expect(String(r.stderr)).toContain('volume create mail failed at "make the filesystem on the metadata host, activate the logical volume on the others"');
    expect(String(r.stderr)).toContain('What this run had created was undone.');
    expect(String(r.stdout)).toMatch(/Undo \(after the failure in "make the filesystem on the metadata host, activate the logical volume on the others"\)\n {4}data1 +undone create the logical volume on the metadata host/);
    expect(v.lines('data1').filter((l) => /^(lvcreate|mkfs|lvremove|sh)/.test(l))).toEqual(expect.arrayContaining(['mkfs.ext4 -q /dev/vg_cluster/mail']));
    expect(v.exec('data1', 'ls /var/lib/enssib-stand-in/lvm/vg_cluster/ 2>/dev/null | wc -l').trim()).toBe('0'); // the LV is gone
    for (const w of v.workers) expect(v.calls(w)).toEqual([]);
  }, 120_000);

  it('reports a worker unreachable during discovery: the volume is created, the summary names it and the commands to run later', async () => {
    pause('node03');
    const r = await v.enssib(['volume', 'create', 'mail', '1G']);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).toContain('Volume mail created: 1G, ext4.');
    expect(r.stdout).toMatch(/discovery on every worker \(both portals\)\n {4}node01 +done\n {4}node02 +done\n {4}node03 +FAILED/);
    expect(r.stdout).toContain('Not done on 1 worker(s) — the volume is created; run later, on each:');
    expect(r.stdout).toContain('  node03 (node03: ');
    expect(r.stdout).toContain('    iscsiadm -m discovery -t sendtargets -p 10.66.6.1:3260 -o new -o update\n    iscsiadm -m discovery -t sendtargets -p 10.66.6.2:3260 -o new -o update');
    expect(r.stdout).toContain('or run again from here (it converges): enssib volume create mail 1G');
    expect(r.stderr).toContain('error: volume mail is created, but node03 could not be told about it');
    expect(r.stdout).toContain('checked on node01: one multipath map');
    expect(v.lines('data1', 'lvcreate')).toHaveLength(1);

    // once node03 answers, the same command finishes the job there only
    v.unpause('node03');
    paused.delete('node03');
    v.clearCalls();
    const again = await v.enssib(['volume', 'create', 'mail', '1G']);
    expect(again.code, again.stderr).toBe(0);
    expect(v.lines('node03', 'iscsiadm')).toContain('iscsiadm -m discovery -t sendtargets -p 10.66.6.2:3260 -o new -o update');
    expect(v.lines('node02', 'iscsiadm')).toEqual(['iscsiadm -m node']);
    expect(v.lines('data1').join('\n')).not.toMatch(/lvcreate|scstadmin -noprompt -config/);
  }, 120_000);
});
