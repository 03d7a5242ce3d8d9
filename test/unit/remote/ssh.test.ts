import { describe, expect, it } from 'vitest';
import { ConnectionError } from '../../../src/errors.js';
import { SshHost } from '../../../src/remote/ssh.js';

const target = { name: 'data1', target: 'data1', connectTimeoutS: 1, commandTimeoutS: 5, controlPersistS: 1 };

describe('SshHost without a host', () => {
  it('sends sudo -n only for a user other than root, and quotes each argument', () => {
    expect(new SshHost(target).describe(['lvs', 'a b'])).toBe("lvs 'a b'");
    expect(new SshHost({ ...target, user: 'admin' }).describe(['lvs', '$(id)'])).toBe("sudo -n -- lvs '$(id)'");
    expect(new SshHost({ ...target, user: 'root' }).describe(['true'])).toBe('true');
  });

  it('sends the command under the supervisor, as root through sudo -n when the user is not root', () => {
    const sent = (user: string | undefined, opts = {}) => new SshHost({ ...target, ...(user ? { user } : {}) }).supervisedLine(['lvs', 'a b'], opts, 4200, null);
    expect(sent(undefined)).toMatch(/^set -- 5 - lvs 'a b'; s='.*'; \[ -n "\$\{BASH_VERSION-\}" \] \|\| exec bash -c "\$s" enssib-run "\$@"; eval "\$s"$/s);
    expect(sent('admin')).toMatch(/^sudo -n -- bash -c '.*' enssib-run 5 - lvs 'a b'$/s);
    expect(sent('admin', { sudo: false })).toMatch(/^set -- 5 - lvs /);
  });

  it('never turns host-key checking off (StrictHostKeyChecking=yes over any ssh config) and passes the inventory settings to ssh', () => {
    const args = new SshHost({ ...target, port: 2222, user: 'admin', configFile: '/lab/ssh_config', knownHostsFile: '/lab/kh' }).sshArgs();
    expect(args.join(' ')).not.toMatch(/StrictHostKeyChecking=no|UserKnownHostsFile=\/dev\/null/);
    expect(args).toEqual(expect.arrayContaining(['-F', '/lab/ssh_config', '-p', '2222', '-l', 'admin', 'BatchMode=yes', 'StrictHostKeyChecking=yes', 'UserKnownHostsFile=/lab/kh']));
  });

  it('never joins a kept connection made under other trust settings: the control socket is named by the ssh config and known_hosts too', () => {
    const path = (t: Partial<typeof target> & { knownHostsFile?: string; configFile?: string }) =>
      new SshHost({ ...target, ...t }, { controlDir: '/run/cm' }).sshArgs().find((a) => a.startsWith('ControlPath='));
    const lab = path({ knownHostsFile: '/lab/kh' });
    expect(lab).toMatch(/^ControlPath=\/run\/cm\/[0-9a-f]{8}-%C$/);
    expect(path({ knownHostsFile: '/lab/kh' })).toBe(lab);
    expect(path({ knownHostsFile: '/other/kh' })).not.toBe(lab);
    expect(path({ knownHostsFile: '/lab/kh', configFile: '/lab/ssh_config' })).not.toBe(lab);
    expect(path({})).not.toBe(lab);
  });

  it('says so when the ssh client is not installed', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const err = await new SshHost(target, { share: false }).exec(['true']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectionError);
      expect((err as Error).message).toBe('data1: the ssh client is not installed (apt-get install openssh-client)');
    } finally {
      process.env.PATH = path;
    }
  });
});
