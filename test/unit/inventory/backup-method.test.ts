import { describe, expect, it } from 'vitest';
import { backupSite } from '../../../src/backup/site.js';
import { parseAbsoluteFile } from '../../../src/inventory/destination.js';
import { parseInventory } from '../../../src/inventory/load.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';

/** `backup.method: image|borg` and `backup.borg.passphraseFile`: the schema's errors, and the resolved backup site. */
const load = (backup: string) => parseInventory(`${VALID_INVENTORY}backup:\n${backup}`, '/site/inventory.yaml', {});

describe('backup.method', () => {
  it('image by default: no borg repository', () => {
    expect(backupSite(load('  destination: /srv/backup\n  retention: { daily: 7 }\n')).borg).toBeUndefined();
    expect(backupSite(load('  destination: /srv/backup\n  method: image\n  retention: { daily: 7 }\n')).borg).toBeUndefined();
  });

  it('borg: the repository <destination>/borg, on the metadata host or on the backup host, with the passphrase file', () => {
    const local = backupSite(load('  destination: /srv/backup/\n  method: borg\n  borg: { passphraseFile: /root/enssib-borg.passphrase }\n  retention: { daily: 7 }\n'));
    expect(local.borg).toEqual({ path: '/srv/backup/borg', remote: null, passphraseFile: '/root/enssib-borg.passphrase' });
    const remote = backupSite(load('  destination: "ssh://backup@backup1:2222/srv/enssib"\n  method: borg\n  borg: { passphraseFile: /etc/enssib/borg.pass }\n  retention: { daily: 7 }\n'));
    expect(remote.borg).toEqual({ path: '/srv/enssib/borg', remote: { user: 'backup', host: 'backup1', port: 2222 }, passphraseFile: '/etc/enssib/borg.pass' });
  });

  it('a borg section with the image method is kept aside (the repository is not used)', () => {
    expect(backupSite(load('  destination: /srv/backup\n  borg: { passphraseFile: /root/p }\n  retention: { daily: 7 }\n')).borg).toBeUndefined();
  });

  const refused: [string, RegExp][] = [
    ['  method: borg\n', /inventory\.yaml:\d+:\d+: backup\.method: method borg needs borg: \{ passphraseFile: \/root\/… \}/],
    ['  method: borg\n  borg: {}\n', /backup\.borg\.passphraseFile/],
    ['  method: restic\n', /backup\.method: expected one of "image", "borg"/],
    ['  method: BORG\n', /backup\.method: expected one of "image", "borg"/],
    ['  method: ""\n', /backup\.method: expected one of "image", "borg"/],
    ['  method: [borg]\n', /backup\.method/],
    ['  method: borg\n  borg: { passphraseFile: /root/p, key: x }\n', /backup\.borg.*key/],
    ['  method: borg\n  borg: { passphraseFile: relative/p }\n', /backup\.borg\.passphraseFile: expected an absolute file path/],
    ['  method: borg\n  borg: { passphraseFile: "" }\n', /backup\.borg\.passphraseFile: expected an absolute file path/],
    ['  method: borg\n  borg: { passphraseFile: / }\n', /backup\.borg\.passphraseFile: expected a file, not \//],
    ['  method: borg\n  borg: { passphraseFile: /root/ }\n', /backup\.borg\.passphraseFile: expected a file, not a folder/],
    ['  method: borg\n  borg: { passphraseFile: /root/../etc/shadow }\n', /backup\.borg\.passphraseFile: the name "\.\." is not accepted/],
    ['  method: borg\n  borg: { passphraseFile: "/root/p; cat /etc/shadow" }\n', /backup\.borg\.passphraseFile: .* is not accepted/],
    ['  method: borg\n  borg: { passphraseFile: "/root/$(reboot)" }\n', /is not accepted/],
    ['  method: borg\n  borg: { passphraseFile: "/root/`id`" }\n', /is not accepted/],
    ['  method: borg\n  borg: { passphraseFile: "/root/it\'s" }\n', /is not accepted/],
    ['  method: borg\n  borg: { passphraseFile: "/root/a b" }\n', /is not accepted/],
    ['  method: borg\n  borg: { passphraseFile: "/root/a\\nb" }\n', /is not accepted/],
    ['  method: borg\n  borg: { passphraseFile: "/root/mot-de-passé" }\n', /is not accepted/],
    ['  method: borg\n  borg: { passphraseFile: 42 }\n', /backup\.borg\.passphraseFile/],
  ];
  for (const [text, msg] of refused) {
    it(`refuses ${JSON.stringify(text.trim())}`, () => {
      expect(() => load(`  destination: /srv/backup\n  retention: { daily: 7 }\n${text}`)).toThrow(msg);
    });
  }

  it('the path check keeps one argument a shell word could not split', () => {
    expect(parseAbsoluteFile('//root//enssib.pass')).toBe('/root/enssib.pass');
    expect(parseAbsoluteFile('-rf')).toEqual({ error: expect.stringMatching(/absolute/) as string });
  });
});
