import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { asIdentity, newIdentity, scstIdentity } from '../../../src/storage/identity.js';
import {
  attrs,
  deviceAttributes,
  devices,
  parseScstConf,
  removeVolume,
  renderScstConf,
  sections,
  stateMatches,
  unsafeDevices,
  upsertVolume,
  volumeState,
  type ScstVolume,
} from '../../../src/storage/targets/scst.js';

const SITE = readFileSync(join(import.meta.dirname, 'fixtures', 'scst-site.conf'), 'utf8');
const ID = asIdentity('0123456789abcdef0123456789abcdef');
const vol = (name: string, identity = ID): ScstVolume => ({ name, filename: `/dev/vg_cluster/${name}`, identity, iqn: `iqn.2016-04.fr.enssib:${name}` });

/** Every line of `before` that is not part of the volume's objects, in order. */
function linesOutside(text: string, name: string, iqn: string): string[] {
  const out: string[] = [];
  let skip = 0;
  for (const l of text.split('\n')) {
    const t = l.trim();
    if (skip > 0) {
      if (t.endsWith('{')) skip++;
      if (t === '}') skip--;
      continue;
    }
    if (t === `DEVICE ${name} {` || t === `TARGET ${iqn} {`) {
      skip = 1;
      continue;
    }
    out.push(l);
  }
  return out.filter((l) => l.trim() !== '');
}

describe('scst.conf parsing and rendering', () => {
  it('round-trips the site file byte for byte', () => {
    expect(renderScstConf(parseScstConf(SITE))).toBe(SITE);
    const noNewline = SITE.trimEnd();
    expect(renderScstConf(parseScstConf(noNewline))).toBe(noNewline);
    expect(renderScstConf(parseScstConf(''))).toBe('');
  });

  it('reads sections, attributes, quoted values and comments', () => {
    const c = parseScstConf(SITE);
    expect(devices(c).map((d) => `${d.handler}/${d.device.args[0]}`)).toEqual(['vdisk_blockio/ldap', 'vdisk_blockio/legacy', 'vdisk_fileio/scratch']);
    const ldap = devices(c)[0]?.device;
    expect(ldap && attrs(ldap).get('t10_dev_id')).toEqual(['0x2345']);
    const driver = sections(c.items, 'TARGET_DRIVER', 'iscsi')[0];
    expect(driver && attrs(driver).get('IncomingUser')).toEqual(['joe 12charsecret']);
    expect(volumeState(c, 'ldap', 'iqn.2016-04.fr.enssib:ldap').target?.luns).toEqual([
      { lun: '0', device: 'ldap', group: null },
      { lun: '1', device: 'legacy', group: null },
    ]);
  });

  it('refuses files it cannot read, with the line', () => {
    expect(() => parseScstConf('HANDLER vdisk_blockio {\n\tDEVICE x {\n}\n')).toThrow(/line 1: section "HANDLER vdisk_blockio" is never closed/);
    expect(() => parseScstConf('}\n')).toThrow(/line 1: a "}" closes no section/);
    expect(() => parseScstConf('DEVICE a { b }\n')).toThrow(/line 1/);
  });
});

describe('editing keeps every object enssib does not manage', () => {
  it('adds the device and target and leaves every other line as it was', () => {
    const v = vol('mail');
    const after = renderScstConf(upsertVolume(parseScstConf(SITE), v));
    expect(linesOutside(after, 'mail', v.iqn)).toEqual(linesOutside(SITE, 'mail', v.iqn));
    expect(after).toContain('IncomingUser "joe 12charsecret"');
    expect(after).toContain('\tDEVICE mail {\n\t\tfilename /dev/vg_cluster/mail\n\t\tnv_cache 0\n\t\twrite_through 1\n\t\tt10_dev_id 0123456789abcdef01234567\n\t\tusn 0123456789abcdef\n\t}');
    expect(after).toContain('\tTARGET iqn.2016-04.fr.enssib:mail {\n\t\tenabled 1\n\n\t\tLUN 0 mail\n\t}');
  });

  it('is idempotent, and add then remove gives back the file', () => {
    const v = vol('mail');
    const once = upsertVolume(parseScstConf(SITE), v);
    expect(renderScstConf(upsertVolume(once, v))).toBe(renderScstConf(once));
    expect(renderScstConf(removeVolume(once, v))).toBe(SITE);
  });

  it('replaces a device written with other attributes (an earlier identity) and keeps the rest', () => {
    const old = renderScstConf(upsertVolume(parseScstConf(SITE), vol('mail', asIdentity('f'.repeat(32)))));
    const next = renderScstConf(upsertVolume(parseScstConf(old), vol('mail')));
    expect(next).toContain('t10_dev_id 0123456789abcdef01234567');
    expect(next).not.toContain('ffffffff');
    expect(linesOutside(next, 'mail', vol('mail').iqn)).toEqual(linesOutside(SITE, 'mail', vol('mail').iqn));
  });

  it('creates the handler and the iSCSI driver (enabled) in an empty file', () => {
    const text = renderScstConf(upsertVolume(parseScstConf(''), vol('mail')));
    expect(text).toMatch(/^HANDLER vdisk_blockio \{\n\tDEVICE mail \{/);
    expect(text).toContain('TARGET_DRIVER iscsi {\n\tenabled 1\n\n\tTARGET iqn.2016-04.fr.enssib:mail {');
    expect(text.endsWith('}\n')).toBe(true);
    expect(renderScstConf(parseScstConf(text))).toBe(text);
  });

  it('removes only the volume (LUN sections, groups and other targets stay)', () => {
    const c = parseScstConf(SITE);
    const text = renderScstConf(removeVolume(c, vol('legacy')));
    expect(text).not.toContain('DEVICE legacy {');
    expect(text).toContain('LUN 1 legacy {'); // a LUN of another target is not enssib's to remove
    expect(text).toContain('DEVICE_GROUP dgroup1 {');
  });

  it('refuses a name used under another handler and a LUN 0 taken by another device', () => {
    expect(() => upsertVolume(parseScstConf(SITE), vol('scratch'))).toThrow(/HANDLER vdisk_fileio/);
    const taken = SITE.replace('TARGET iqn.2016-04.fr.enssib:ldap', 'TARGET iqn.2016-04.fr.enssib:other');
    expect(() => upsertVolume(parseScstConf(taken), { ...vol('other') })).toThrow(/maps LUN 0 to device "ldap"/);
  });

  it('compares a state with the wanted volume', () => {
    const v = vol('mail');
    const c = upsertVolume(parseScstConf(SITE), v);
    expect(stateMatches(volumeState(c, 'mail', v.iqn), v)).toBe(true);
    expect(stateMatches(volumeState(c, 'mail', v.iqn), vol('mail', newIdentity()))).toBe(false);
    expect(stateMatches(volumeState(parseScstConf(SITE), 'mail', v.iqn), v)).toBe(false);
  });
});

describe('safety property: nv_cache 0, write_through 1 and one identity on both servers', () => {
  it('finds the devices of the site file that lack them', () => {
    expect(unsafeDevices(parseScstConf(SITE))).toEqual([
      { name: 'legacy', handler: 'vdisk_blockio', problems: ['nv_cache 1', 'write_through (unset)'] },
      { name: 'scratch', handler: 'vdisk_fileio', problems: ['nv_cache (unset)', 'write_through (unset)'] },
    ]);
  });

  it('holds for every device the tool writes, whatever the starting file, name and identity', () => {
    const names = ['a', 'mail', 'ldap', 'x-1', 'zz9', 'abcdefghijklmnop', 'legacy'];
    const starts = [SITE, '', 'TARGET_DRIVER iscsi {\n\tenabled 0\n}\n', '# only a comment\n'];
    let checked = 0;
    for (const start of starts) {
      for (const name of names) {
        for (let i = 0; i < 5; i++) {
          const v = vol(name, newIdentity());
          // data1 and data2 each render their own file from their own starting point
          const data1 = upsertVolume(parseScstConf(start), v);
          const data2 = upsertVolume(parseScstConf(i % 2 ? SITE : start), v);
          for (const conf of [data1, data2]) {
            const d = devices(conf).find((x) => x.device.args[0] === name);
            expect(d?.handler).toBe('vdisk_blockio');
            const a = attrs(d?.device as NonNullable<typeof d>['device']);
            expect(a.get('nv_cache')).toEqual(['0']);
            expect(a.get('write_through')).toEqual(['1']);
            expect(a.get('t10_dev_id')).toEqual([scstIdentity(v.identity).t10DevId]);
            expect(a.get('usn')).toEqual([scstIdentity(v.identity).usn]);
            // and it survives the text form the tool actually writes
            const reread = parseScstConf(renderScstConf(conf));
            expect(stateMatches(volumeState(reread, name, v.iqn), v)).toBe(true);
            expect(unsafeDevices(reread).map((u) => u.name)).not.toContain(name);
            checked++;
          }
          const block = (c: typeof data1) => renderScstConf({ items: [devices(c).find((x) => x.device.args[0] === name)?.device as never], finalNewline: false });
          expect(block(data1)).toBe(block(data2));
        }
      }
    }
    expect(checked).toBe(starts.length * names.length * 5 * 2);
  });

  it('offers no way to render a device with other nv_cache or write_through values', () => {
    const spec = vol('mail') as ScstVolume & Record<string, unknown>;
    const attempt = { ...spec, nv_cache: '1', write_through: '0' };
    expect(Object.fromEntries(deviceAttributes(attempt))).toMatchObject({ nv_cache: '0', write_through: '1' });
  });

  it('keeps the SCST identity within the driver limits (t10_dev_id ≤ 25, usn ≤ 20)', () => {
    for (let i = 0; i < 50; i++) {
      const ids = scstIdentity(newIdentity());
      expect(ids.t10DevId.length).toBeLessThanOrEqual(25);
      expect(ids.usn.length).toBeLessThanOrEqual(20);
      expect(ids.t10DevId).toMatch(/^[0-9a-f]+$/);
    }
  });
});
