import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelLab, type ServedRepo } from './lab.js';

/**
 * The kernel lab's own parts that `node bootstrap` tests stand on, proved on
 * node01 with plain commands: the lab's signed apt repository served over
 * loopback and an ssh reverse forward (the VMs have no route out), Debian's
 * real containerd and runc installed from it and running, the STAND-IN
 * kubeadm/kubelet (Kubernetes binaries are not available here) recording what
 * they are asked, and node01 put back as the other kernel tests
 * expect it (a QEMU snapshot of its disk and memory, loaded at the end).
 */
const lab = kernelLab();
const TAG = 'enssib-lab-apt';
let repo: ServedRepo | undefined;
let restored = false;

beforeAll(async () => {
  await lab.snapshot('node01', TAG);
  repo = await lab.serveAptRepo('node01');
}, 900_000);

afterAll(async () => {
  repo?.close();
  if (!restored) await lab.restore('node01', TAG);
}, 600_000);

/** The repository's key into the VM's keyrings, and the apt source naming it (the Debian mirror the VM cannot reach moved aside). */
function useRepo(keyring: string): void {
  const key = readFileSync(keyring).toString('base64');
  lab.must(
    'node01',
    `set -e
     install -d -m 755 /etc/apt/keyrings
     echo '${key}' | base64 -d > /etc/apt/keyrings/enssib-lab.gpg
     [ -f /etc/apt/sources.list ] && mv /etc/apt/sources.list /etc/apt/sources.list.no-mirror
     echo 'deb [signed-by=/etc/apt/keyrings/enssib-lab.gpg] ${repo?.url} /' > /etc/apt/sources.list.d/enssib-lab.list`,
  );
}

describe("the kernel lab's apt repository, kubeadm/kubelet stand-ins, and snapshot of node01", () => {
  it('refuses the repository signed by another key, then installs and starts Debian containerd and runc from it', () => {
    if (!repo) throw new Error('no repository');
    // single quotes: the scripts run under bash, where "${Status}" would be an empty variable
    expect(lab.sh('node01', "dpkg-query -W -f '${Status}' containerd").stderr).toContain('no packages found matching containerd');
    expect(lab.sh('node01', 'command -v containerd runc').code).not.toBe(0);

    // a keyring without the lab's key: apt refuses the repository
    useRepo('/usr/share/keyrings/debian-archive-keyring.gpg');
    const unsigned = lab.sh('node01', 'apt-get -q update 2>&1');
    expect(unsigned.code).not.toBe(0);
    expect(unsigned.stdout).toMatch(/NO_PUBKEY|is not signed/);
    expect(lab.must('node01', 'apt-cache policy containerd')).not.toContain('127.0.0.1:18080');

    useRepo(repo.key);
    const update = lab.must('node01', 'apt-get -q update 2>&1', 300_000);
    expect(update).not.toMatch(/^(W|E):/m);
    expect(lab.must('node01', 'apt-cache policy containerd runc kubeadm')).toContain('http://127.0.0.1:18080');

    lab.must('node01', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q containerd runc >/tmp/apt-install.log 2>&1 || { cat /tmp/apt-install.log; exit 1; }', 600_000);
    expect(lab.must('node01', 'systemctl is-active containerd').trim()).toBe('active');
    expect(lab.must('node01', "dpkg-query -W -f '${Version}' containerd")).toMatch(/^1\.6\.\d+~ds1-/);
    expect(lab.must('node01', 'runc --version')).toMatch(/^runc version 1\.1\./);
    // the daemon answers on its socket
    expect(lab.must('node01', 'ctr version')).toMatch(/Server:\s+Version:\s+1\.6\./);
  }, 900_000);

  it('installs the STAND-IN kubeadm and kubelet: a join line from token create, one join, a second refused, every call recorded', () => {
    lab.must('node01', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q kubeadm kubelet >/tmp/apt-install.log 2>&1 || { cat /tmp/apt-install.log; exit 1; }', 600_000);
    expect(lab.must('node01', 'kubeadm version -o short').trim()).toBe('v1.30.4');
    const line = lab.must('node01', 'kubeadm token create --print-join-command').trim();
    expect(line).toMatch(/^kubeadm join api\.cluster\.enssib\.fr:6443 --token [a-z0-9]{6}\.[a-z0-9]{16} --discovery-token-ca-cert-hash sha256:[0-9a-f]{64}$/);
    const join = lab.must('node01', `${line} --node-name node01`);
    expect(join).toContain('This node has joined the cluster');
    expect(lab.must('node01', 'cat /etc/kubernetes/kubelet.conf')).toContain('server: "https://api.cluster.enssib.fr:6443"');
    const again = lab.sh('node01', `${line} --node-name node01`);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('/etc/kubernetes/kubelet.conf already exists');
    const log = lab.must('node01', 'cat /var/lib/enssib-standin/kubeadm.log').trim().split('\n');
    const args = line.replace(/^kubeadm /, '');
    expect(log).toEqual(['version -o short', 'token create --print-join-command', `printed: ${line}`, `${args} --node-name node01`, `${args} --node-name node01`]);
    expect(lab.must('node01', 'systemctl is-active kubelet').trim()).toBe('active');
    // started by its package, restarted by the join: no arguments each time
    expect(lab.must('node01', 'cat /var/lib/enssib-standin/kubelet.log')).toMatch(/^\n{2,}$/);
  }, 900_000);

  it('restores node01 to its state before the test: no containerd, the Debian sources back, the clock right, iscsid and multipathd running', async () => {
    repo?.close();
    await lab.restore('node01', TAG);
    restored = true;
    expect(lab.sh('node01', "dpkg-query -W -f '${Status}' containerd").stderr).toContain('no packages found matching containerd');
    expect(lab.sh('node01', 'command -v kubeadm runc').code).not.toBe(0);
    expect(lab.sh('node01', 'test -e /var/lib/enssib-standin || test -e /etc/apt/sources.list.d/enssib-lab.list').code).not.toBe(0);
    expect(lab.must('node01', 'cat /etc/apt/sources.list')).toContain('deb.debian.org');
    expect(Math.abs(Number(lab.must('node01', 'date +%s').trim()) - Date.now() / 1000)).toBeLessThan(10);
    expect(lab.must('node01', 'systemctl is-active iscsid multipathd').trim().split('\n')).toEqual(['active', 'active']);
    expect(lab.must('node01', 'cat /etc/iscsi/initiatorname.iscsi').trim()).toBe('InitiatorName=iqn.2016-04.fr.enssib:node01');
    expect(lab.must('node01', 'ping -c1 -W2 -M do -s 8972 10.66.6.1 >/dev/null && echo ok').trim()).toBe('ok');
    expect(lab.sh('node01', 'info=$(ls /sys/class/net); echo $info').stdout.trim()).toBe('eth0 eth1 lo');
  }, 900_000);
});
