import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, enssib } from '../../support/cli.js';
import { startKubeStandIn, type KubeStandIn } from '../../support/kube-stand-in/index.js';
import { kernelLab, type ServedRepo } from './lab.js';

/**
 * `enssib node bootstrap node01` on the kernel lab's VM as the new worker: the
 * real OS phases (swap, Debian's containerd and runc installed and started,
 * modules, sysctls, MTU and default route on eth1, iSCSI initiator name,
 * multipath.conf, nfsmount.conf, the registry's CA for containerd) applied,
 * then found unchanged on a second run, and still there after a reboot
 * (`node check` reports no drift).
 *
 * Stand-ins, as Kubernetes cannot run here:
 * - kubeadm and kubelet are the lab's STAND-IN packages (test/lab/kernel/standin/):
 *   they record their arguments; the test checks the join command node01
 *   received and that the second run joins nothing;
 * - the API server is the Kubernetes STAND-IN (test/support/kube-stand-in/) on
 *   the host's loopback, holding a Ready Node node01: what "wait until Ready"
 *   and the labels and taints talk to.
 * Packages come from the lab's signed apt repository (test/lab/kernel/apt-repo.sh)
 * over an ssh reverse forward: the VMs have no route out. node01 is snapshotted
 * first and restored last, so the other kernel tests find it as up.sh left it.
 */
const lab = kernelLab();
const TAG = 'enssib-node-bootstrap';
const MASTER = 'data1';
let repo: ServedRepo | undefined;
let standIn: KubeStandIn | undefined;
let dir = '';
let inventory = '';
let restored = false;
const timings: Record<string, number> = {};

const run = async (args: string[]) => {
  const t = Date.now();
  const r = await enssib(['-i', inventory, ...args], { timeoutMs: 1_500_000 });
  return { ...r, seconds: (Date.now() - t) / 1000 };
};

/**
 * The lab's inventory with what a worker's bootstrap needs: the nodes block, the registry's CA, the API stand-in, labels and a taint on node01.
 * maxClockSkew 5 s, not the default 2: the VMs have no NTP, and their TCG clocks drift on a loaded host between the times the test sets them.
 */
function writeInventory(): void {
  const base = readFileSync(lab.inventory, 'utf8');
  if (!standIn || !repo) throw new Error('not started');
  const kubeconfig = standIn.writeKubeconfig(join(dir, 'kubeconfig'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', '2', '-subj', '/CN=enssib lab registry CA'], { stdio: 'ignore' });
  const text = base
    .replace(/^ {2}- \{ name: node01, (.*) \}$/m, '  - { name: node01, $1, labels: { disk: ssd }, taints: ["dedicated=storage:NoSchedule"] }')
    .replace(/^registry: .*$/m, `registry: { host: registry.cluster.enssib.fr:5000, ca: ${join(dir, 'ca.crt')} }`)
    .replace(/^kubernetes: .*$/m, `kubernetes: { api: ${standIn.url}, kubeconfig: ${kubeconfig} }`)
    .replace(/^journal: .*$/m, `journal: ${join(dir, 'journal.jsonl')}`)
    .concat(`nodes:\n  interface: eth1\n  gateway: 10.66.6.10\n  minimum: { memory: 512M, cpus: 1 }\n  maxClockSkew: 5\n  apt: { url: "${repo.url}", key: ${repo.key} }\n`);
  for (const want of ['labels: { disk: ssd }', 'registry: { host', `api: ${standIn.url}`, `journal: ${dir}`]) if (!text.includes(want)) throw new Error(`the lab inventory changed shape: no "${want}" after the edit`);
  inventory = join(dir, 'inventory.yaml');
  writeFileSync(inventory, text);
}

beforeAll(async () => {
  assertBuilt();
  dir = mkdtempSync(join(tmpdir(), 'enssib-node-bootstrap-'));
  await lab.snapshot('node01', TAG);
  repo = await lab.serveAptRepo('node01');
  standIn = await startKubeStandIn();
  standIn.seed({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'node01' },
    spec: { podCIDR: '10.100.1.0/24' },
    status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status (API STAND-IN)' }], nodeInfo: { kubeletVersion: 'v1.30.4' } },
  });
  writeInventory();
  // node01 as a fresh Debian worker would be: swap on, Debian's default
  // initiator name, MTU 1500, the Debian mirror it cannot reach moved aside;
  // its initiator name is enssib's from now on (the lab's boot-time default is kept off)
  lab.must(
    'node01',
    `set -e
     mv /etc/apt/sources.list /etc/apt/sources.list.no-mirror
     ip link set dev eth1 mtu 1500
     fallocate -l 32M /swapfile && chmod 600 /swapfile && mkswap -q /swapfile && swapon /swapfile
     echo '/swapfile none swap sw 0 0' >> /etc/fstab
     echo 'InitiatorName=iqn.1993-08.org.debian:01:0123456789ab' > /etc/iscsi/initiatorname.iscsi
     mkdir -p /etc/systemd/system/enssib-lab-setup.service.d
     printf '[Service]\\nExecStartPre=/bin/cp -p /etc/iscsi/initiatorname.iscsi /run/enssib-initiatorname\\nExecStartPost=/bin/cp -p /run/enssib-initiatorname /etc/iscsi/initiatorname.iscsi\\n' > /etc/systemd/system/enssib-lab-setup.service.d/keep-initiator.conf
     systemctl daemon-reload`,
  );
  // the master answers kubeadm token create: the stand-in kubeadm package on data1
  const deb = readFileSync(join(lab.aptRepo(), 'repo', 'kubeadm_1.30.4-1.1_amd64.deb')).toString('base64');
  lab.must(MASTER, `echo '${deb}' | base64 -d > /tmp/kubeadm.deb && dpkg -i /tmp/kubeadm.deb >/dev/null && rm -f /tmp/kubeadm.deb /var/lib/enssib-standin/kubeadm.log`);
}, 900_000);

afterAll(async () => {
  repo?.close();
  await standIn?.close();
  lab.sh(MASTER, 'dpkg --purge kubeadm >/dev/null 2>&1; rm -rf /var/lib/enssib-standin');
  if (!restored) await lab.restore('node01', TAG);
  if (dir) rmSync(dir, { recursive: true, force: true });
  process.stderr.write(`node bootstrap timings (s, indicative on a loaded host): ${JSON.stringify(timings)}\n`);
}, 600_000);

/** What the bootstrap leaves on node01, checked after each run and after the reboot. */
function expectWorker(): void {
  expect(lab.must('node01', 'ip -d -o link show dev eth1')).toMatch(/ mtu 9000 /);
  expect(lab.must('node01', 'ip route show default').trim()).toMatch(/^default via 10\.66\.6\.10 dev eth1\b/);
  expect(lab.must('node01', 'ip route show default | wc -l').trim()).toBe('1');
  expect(lab.must('node01', 'sysctl -n net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables').trim().split('\n')).toEqual(['1', '1']);
  const modules = lab.must('node01', "lsmod | awk '{ print $1 }'").split('\n');
  for (const m of ['br_netfilter', 'overlay', 'iscsi_tcp', 'dm_multipath']) expect(modules).toContain(m);
  expect(lab.must('node01', 'swapon --noheadings --show').trim()).toBe('');
  expect(lab.must('node01', 'grep swapfile /etc/fstab')).toMatch(/^#/);
  expect(lab.must('node01', 'systemctl is-active containerd iscsid multipathd kubelet').trim().split('\n')).toEqual(['active', 'active', 'active', 'active']);
  // installed ("ii"); kubelet and kubeadm installed and held ("hi")
  expect(lab.must('node01', "dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' containerd runc nfs-common netbase kubelet kubeadm").trim().split('\n').map((l) => l.trim())).toEqual(
    ['containerd ii', 'kubeadm hi', 'kubelet hi', 'netbase ii', 'nfs-common ii', 'runc ii'],
  );
  expect(lab.must('node01', 'apt-mark showhold').trim().split('\n').sort()).toEqual(['kubeadm', 'kubelet']);
  expect(lab.must('node01', 'grep ^InitiatorName= /etc/iscsi/initiatorname.iscsi').trim()).toBe('InitiatorName=iqn.2016-04.fr.enssib:node01');
  expect(lab.must('node01', 'cat /etc/multipath.conf')).toBe(readFileSync(join(import.meta.dirname, '../../../templates/node/multipath.conf'), 'utf8'));
  expect(lab.must('node01', 'cat /etc/nfsmount.conf')).toMatch(/proto=tcp/i);
  expect(lab.must('node01', 'cat /etc/containerd/certs.d/registry.cluster.enssib.fr:5000/ca.crt')).toBe(readFileSync(join(dir, 'ca.crt'), 'utf8'));
  expect(lab.must('node01', 'test -f /etc/kubernetes/kubelet.conf && echo joined').trim()).toBe('joined');
}

describe('node bootstrap node01 on the kernel lab (kubeadm/kubelet and the API server are stand-ins)', () => {
  it('first run: applies every phase for real and joins once with the token from data1', async () => {
    const r = await run(['node', 'bootstrap', 'node01', '--yes']);
    timings.first = r.seconds;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expectWorker();

    const printed = lab.must(MASTER, 'cat /var/lib/enssib-standin/kubeadm.log').trim().split('\n');
    expect(printed[0]).toBe('token create --print-join-command --ttl 15m');
    const line = /^printed: kubeadm (join .*)$/.exec(printed[1] ?? '')?.[1] ?? '';
    expect(line).toMatch(/^join api\.cluster\.enssib\.fr:6443 --token [a-z0-9]{6}\.[a-z0-9]{16} --discovery-token-ca-cert-hash sha256:[0-9a-f]{64}$/);
    expect(lab.must('node01', 'grep ^join /var/lib/enssib-standin/kubeadm.log').trim().split('\n')).toEqual([`${line} --node-name node01`]);
    // the token is a secret: not in what enssib printed, nor in its journal
    const token = /--token (\S+)/.exec(line)?.[1] ?? 'none';
    expect(r.stdout + r.stderr).not.toContain(token);
    expect(readFileSync(join(dir, 'journal.jsonl'), 'utf8')).not.toContain(token);

    // labels and taint set on the Node in the API stand-in (server-side apply)
    expect(standIn?.object('v1', 'Node', '', 'node01')).toMatchObject({ metadata: { labels: { disk: 'ssd' } }, spec: { taints: [{ key: 'dedicated', value: 'storage', effect: 'NoSchedule' }] } });
  }, 1_800_000);

  it('second run: every phase unchanged, nothing written or restarted on node01, no token asked, no second join', async () => {
    // what a mutating command would leave: a file changed, a service started again
    const services = 'containerd iscsid multipathd kubelet systemd-networkd';
    const started = () => lab.must('node01', `systemctl show -p InvocationID --value ${services}`);
    const before = started();
    const apiBefore = standIn?.requests.length ?? 0;
    // Every file's modification time before and after, compared (not `find -newer` a marker: a file an
    // earlier test wrote while the VM's clock ran ahead of the host's would look newer than the marker).
    const files = () => lab.must('node01', "find /etc /var/lib/dpkg /var/lib/apt/lists /var/lib/enssib-standin -printf '%p %T@ %s\\n' | sort");
    const filesBefore = files();
    const r = await run(['node', 'bootstrap', 'node01', '--yes', '-o', 'json']);
    timings.second = r.seconds;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { phases: { id: string; hosts: { host: string; status: string; actions: string[] }[] }[] };
    expect(report.phases.map((p) => p.id)).toEqual(['facts', 'preflight', 'packages', 'kernel', 'network', 'storage', 'initiator-acl', 'registry', 'join-token', 'join', 'ready']);
    expect(report.phases.flatMap((p) => p.hosts.map((h) => `${p.id} ${h.host} ${h.status}`)).filter((s) => !s.endsWith(' unchanged'))).toEqual([]);
    // no command planned on a host (the ready phase's one line is its in-process task, which found the Node settled)
    expect(report.phases.flatMap((p) => p.hosts.filter((h) => h.host !== 'local').flatMap((h) => h.actions))).toEqual([]);
    expect(standIn?.requests.slice(apiBefore).filter((q) => q.method !== 'GET').map((q) => `${q.method} ${q.path}`)).toEqual([]);
    const filesAfter = files();
    const changed = (a: string, b: string) => { const seen = new Set(a.split('\n')); return b.split('\n').filter((l) => !seen.has(l)); };
    expect([...changed(filesBefore, filesAfter), ...changed(filesAfter, filesBefore).map((l) => `gone: ${l}`)]).toEqual([]);
    expect(started()).toBe(before);
    expect(lab.must('node01', 'ls /run/enssib-rollback.* 2>/dev/null; true')).toBe('');
    expect(lab.must(MASTER, 'grep -c "^token create" /var/lib/enssib-standin/kubeadm.log').trim()).toBe('1');
    expect(lab.must('node01', 'grep -c ^join /var/lib/enssib-standin/kubeadm.log').trim()).toBe('1');
    expectWorker();
    process.stderr.write(`node bootstrap: first run ${timings.first?.toFixed(1)} s, second ${r.seconds.toFixed(1)} s (${((100 * r.seconds) / (timings.first ?? 1)).toFixed(0)} %)\n`);
  }, 1_800_000);

  it('after a reboot, node check reports no drift: every setting persisted', async () => {
    timings.reboot = lab.reboot('node01');
    // the lab's VMs have no NTP (no route out): the clock as a worker's timesyncd would set it
    lab.setClock('node01');
    const r = await run(['node', 'check', 'node01', '-o', 'json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { drift: unknown[] }).drift).toEqual([]);
    const text = await run(['node', 'check', 'node01']);
    expect(text.code, text.stdout + text.stderr).toBe(0);
    expect(text.stdout + text.stderr).toContain('node01 is as `enssib node bootstrap node01` leaves it.');
    expectWorker();
  }, 1_800_000);

  it('node01 is restored for the other kernel tests: the lab initiator name, MTU 9000, no containerd', async () => {
    repo?.close();
    await lab.restore('node01', TAG);
    restored = true;
    expect(lab.must('node01', 'cat /etc/iscsi/initiatorname.iscsi').trim()).toBe('InitiatorName=iqn.2016-04.fr.enssib:node01');
    expect(lab.must('node01', 'cat /sys/class/net/eth1/mtu').trim()).toBe('9000');
    expect(lab.sh('node01', 'command -v containerd kubeadm').code).not.toBe(0);
    expect(lab.must('node01', 'ip route show default').trim()).toBe('');
    expect(lab.must('node01', 'swapon --noheadings --show').trim()).toBe('');
  }, 600_000);
});
