import { describe, expect, it } from 'vitest';
import { destinationText, parseBackupDestination } from '../../../src/inventory/destination.js';
import { loadInventory } from '../../../src/inventory/load.js';
import { BACKUP_HOST_UNREACHABLE, atDestination, sshToBackupHost } from '../../../src/backup/site.js';
import { spawnSync } from 'node:child_process';
import { VALID_INVENTORY } from '../../support/inventory-text.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** `backup.destination`: a folder on the metadata host, or ssh://[user@]host[:port]/folder; everything else refused. */
describe('backup.destination', () => {
  it('accepts a local folder and the ssh:// form, normalised', () => {
    expect(parseBackupDestination('/srv/backup/')).toEqual({ kind: 'local', path: '/srv/backup' });
    expect(parseBackupDestination('//srv//backup')).toEqual({ kind: 'local', path: '/srv/backup' });
    expect(parseBackupDestination('ssh://backup@backup1.enssib.fr/srv/enssib')).toEqual({ kind: 'ssh', user: 'backup', host: 'backup1.enssib.fr', port: null, path: '/srv/enssib' });
    expect(parseBackupDestination('ssh://10.0.0.9:2222/b')).toEqual({ kind: 'ssh', user: null, host: '10.0.0.9', port: 2222, path: '/b' });
    expect(parseBackupDestination('ssh://root@b1:65535/srv/a_b-c.d+e@f/')).toEqual({ kind: 'ssh', user: 'root', host: 'b1', port: 65535, path: '/srv/a_b-c.d+e@f' });
    expect(destinationText({ kind: 'ssh', user: 'backup', host: 'b1', port: 2222, path: '/srv/x' })).toBe('ssh://backup@b1:2222/srv/x');
  });

  const hostile: [string, RegExp][] = [
    ['', /expected an absolute folder/],
    ['/', /other than \//],
    ['srv/backup', /expected an absolute folder/],
    ['/srv/../etc', /"\.\." is not accepted/],
    ['/srv/./backup', /"\." is not accepted/],
    ['/srv/back up', /"back up" is not accepted/],
    ['/srv/$(reboot)', /is not accepted/],
    ['/srv/b;rm -rf /', /is not accepted/],
    ['/srv/`id`', /is not accepted/],
    ["/srv/it's", /is not accepted/],
    ['/srv/a\nb', /is not accepted/],
    ['/srv/a\0b', /is not accepted/],
    ['/srv/sauvegardés', /is not accepted/],
    ['/srv/ｂａｃｋｕｐ', /is not accepted/],
    ['backup1:/srv/enssib', /ssh:\/\/\[user@\]host\[:port\]\/folder/],
    ['backup@backup1:/srv/enssib', /expected an absolute folder/],
    ['sftp://backup1/srv', /ssh:\/\//],
    ['ssh://', /the host "" is not a host name/],
    ['ssh://backup1', /expected an absolute folder on the backup host/],
    ['ssh://backup1/', /other than \/ on the backup host/],
    ['ssh://backup1/srv/../etc', /"\.\." is not accepted/],
    ['ssh://-oProxyCommand=reboot/srv', /is not a host name/],
    ['ssh://backup1;reboot/srv', /is not a host name/],
    ['ssh://back$(id)up/srv', /is not a host name/],
    ['ssh://bäckup/srv', /is not a host name/],
    ['ssh://-l/srv', /is not a host name/],
    ['ssh://Root User@b1/srv', /the user "Root User" is not a user name/],
    ['ssh://-oX@b1/srv', /the user "-oX" is not a user name/],
    ['ssh://@b1/srv', /the user "" is not a user name/],
    ['ssh://b1:0/srv', /the port "0" is not a port/],
    ['ssh://b1:65536/srv', /the port "65536" is not a port/],
    ['ssh://b1:99999999/srv', /is not a port/],
    ['ssh://b1:-1/srv', /is not a port/],
    ['ssh://b1:/srv', /the port "" is not a port/],
    ['ssh://b1:22x/srv', /is not a port/],
    ['ssh://b1/srv/a b', /is not accepted/],
    ['ssh://b1/srv/$HOME', /is not accepted/],
  ];
  for (const [value, msg] of hostile) {
    it(`refuses ${JSON.stringify(value)}`, () => {
      const d = parseBackupDestination(value);
      expect('error' in d ? d.error : `accepted: ${JSON.stringify(d)}`).toMatch(msg);
    });
  }

  it('the inventory loader refuses a bad one with the file, line and field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-dest-'));
    const file = join(dir, 'inventory.yaml');
    writeFileSync(file, `${VALID_INVENTORY}backup: { destination: "ssh://b1:70000/srv", retention: { daily: 7 } }\n`);
    expect(() => loadInventory({ path: file, source: '--inventory' }, {})).toThrow(/inventory\.yaml:\d+:\d+: backup\.destination: the port "70000" is not a port \(1 to 65535\)/);
  });
});

describe('commands on the backups run where they are', () => {
  const remote = { user: 'backup', host: 'backup1', port: 2222 };
  it('a local destination: the command itself', () => {
    expect(atDestination({ remote: null }, ['sha256sum', '--', '/srv/b/x.img.zst'])).toEqual(['sha256sum', '--', '/srv/b/x.img.zst']);
  });

  it('a backup host: ssh from the storage server, never prompting nor accepting a new host key, the command as one quoted line', () => {
    const argv = atDestination({ remote }, ['sh', '-c', 'cat -- "$1"', 'x', "/srv/b/it's"]);
    expect(argv.slice(3)).toEqual([
      'enssib-backup-host', '-n', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', 'ConnectTimeout=20', '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=4', '-p', '2222', '--', 'backup@backup1',
      `sh -c 'cat -- "$1"' x '/srv/b/it'\\''s'`,
    ]);
  });

  it('ssh failing (255) becomes 254, other exit codes pass through: the storage server\u2019s own session keeps 255 for itself', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-fake-ssh-'));
    writeFileSync(join(dir, 'ssh'), '#!/bin/sh\neval "exit $(cat "$0.code")"\n', { mode: 0o755 });
    const run = (code: number) => {
      writeFileSync(join(dir, 'ssh.code'), String(code));
      const [cmd, ...args] = atDestination({ remote }, ['true']);
      return spawnSync(cmd as string, args, { env: { PATH: `${dir}:/usr/bin:/bin` } }).status;
    };
    expect([run(0), run(1), run(255), run(BACKUP_HOST_UNREACHABLE)]).toEqual([0, 1, BACKUP_HOST_UNREACHABLE, BACKUP_HOST_UNREACHABLE]);
  });

  it('a stream into the backup host keeps its stdin (no -n); the default port and user are ssh\u2019s', () => {
    expect(sshToBackupHost({ user: null, host: 'b1', port: null }, { stdin: true })).toEqual(['ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', 'ConnectTimeout=20', '-o', 'ServerAliveInterval=15', '-o', 'ServerAliveCountMax=4', '--', 'b1']);
  });
});
