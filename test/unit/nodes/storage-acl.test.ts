import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseInventory } from '../../../src/inventory/load.js';
import { aclPlan, initiatorAclPhase } from '../../../src/nodes/storage-acl.js';
import { lioAddAclActions, parseLioFacts } from '../../../src/storage/targets/lio.js';
import { addInitiator, initiatorMatches, parseScstConf, renderScstConf } from '../../../src/storage/targets/scst.js';
import { volumeSite, type StorageFacts } from '../../../src/storage/volume.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';

const PREFIX = 'iqn.2016-04.fr.enssib';
const NEW = `${PREFIX}:node03`;
const SITE_CONF = readFileSync(join(import.meta.dirname, '..', 'storage', 'fixtures', 'scst-site.conf'), 'utf8');

/** A site file whose volume targets keep their LUN in an access group (comments, CHAP and other targets around). */
const ACL_CONF = `# storage server data1 — access lists kept by hand
HANDLER vdisk_blockio {
\tDEVICE mail {
\t\tfilename /dev/vg_cluster/mail
\t\tnv_cache 0
\t\twrite_through 1
\t}
}

TARGET_DRIVER iscsi {
\tenabled 1

\tTARGET ${PREFIX}:mail {
\t\tIncomingUser "fred 12charsecret2"
\t\tenabled 1
\t\tGROUP workers {
\t\t\tLUN 0 mail
\t\t\tINITIATOR ${PREFIX}:node01   # racked 2019
\t\t\tINITIATOR ${PREFIX}:node02

\t\t\tcpu_mask ff
\t\t}
\t}

\tTARGET ${PREFIX}:open {
\t\tenabled 1
\t\tLUN 0 open
\t}

\tTARGET iqn.2001-01.org.other:backup {
\t\tenabled 1
\t\tGROUP backup {
\t\t\tLUN 0 backup
\t\t\tINITIATOR iqn.2001-01.org.other:tape
\t\t}
\t}
}
`;

describe('SCST: the new initiator in the access groups of the volume targets', () => {
  it('adds one INITIATOR line after the group\'s last one; every other byte stays; a second edit changes nothing', () => {
    const { conf, targets } = addInitiator(parseScstConf(ACL_CONF), PREFIX, NEW);
    const text = renderScstConf(conf);
    expect(text).toBe(ACL_CONF.replace(`\t\t\tINITIATOR ${PREFIX}:node02\n`, `\t\t\tINITIATOR ${PREFIX}:node02\n\t\t\tINITIATOR ${NEW}\n`));
    expect(targets).toEqual([{ iqn: `${PREFIX}:mail`, group: 'workers', added: true }]);
    const again = addInitiator(parseScstConf(text), PREFIX, NEW);
    expect(renderScstConf(again.conf)).toBe(text);
    expect(again.targets).toEqual([{ iqn: `${PREFIX}:mail`, group: 'workers', added: false }]);
  });

  it('a group without INITIATOR lines gets it at its end; a pattern that admits the name already is enough', () => {
    const empty = ACL_CONF.replace(/\t\t\tINITIATOR [^\n]*\n/g, (l) => (l.includes('other:tape') ? l : ''));
    expect(renderScstConf(addInitiator(parseScstConf(empty), PREFIX, NEW).conf)).toContain(`\t\t\tcpu_mask ff\n\t\t\tINITIATOR ${NEW}\n\t\t}`);
    const pattern = ACL_CONF.replace(`INITIATOR ${PREFIX}:node02`, `INITIATOR ${PREFIX.toUpperCase()}:node*`);
    expect(renderScstConf(addInitiator(parseScstConf(pattern), PREFIX, NEW).conf)).toBe(pattern);
  });

  it('matches names and patterns without case; an exclusion or a longer name is no match', () => {
    expect(initiatorMatches(`${PREFIX}:node0?`, NEW)).toBe(true);
    expect(initiatorMatches(`${PREFIX.toUpperCase()}:NODE03`, NEW)).toBe(true);
    expect(initiatorMatches(`!${NEW}`, NEW)).toBe(false);
    expect(initiatorMatches(`${PREFIX}:node0`, NEW)).toBe(false);
    expect(initiatorMatches('iqn.2016-04.fr.enssib.node03', NEW.replace(':', '.').replace('fr.enssib.', 'frXenssib.'))).toBe(false); // "." is a dot, not any character
    expect(initiatorMatches(`${PREFIX}:(node03|x)`, NEW)).toBe(false);
  });

  it('the site file without access groups (LUNs in the default group): nothing changes', () => {
    const { conf, targets } = addInitiator(parseScstConf(SITE_CONF), PREFIX, NEW);
    expect(renderScstConf(conf)).toBe(SITE_CONF);
    expect(targets).toEqual([]);
  });

  it('refuses, changing nothing, when two groups hold the volume\'s LUN', () => {
    const two = ACL_CONF.replace('\t\t\tcpu_mask ff\n\t\t}\n', `\t\t\tcpu_mask ff\n\t\t}\n\t\tGROUP admins {\n\t\t\tLUN 0 mail\n\t\t}\n`);
    expect(() => addInitiator(parseScstConf(two), PREFIX, NEW)).toThrow(/device "mail" in 2 access groups \(workers, admins\)/);
  });
});

describe('LIO: an ACL for the new initiator on the TPGs that use ACLs', () => {
  const facts = (attrs: string, acls: string[]) =>
    parseLioFacts(`tpg\t${PREFIX}:kvol\t1\t1\t${attrs}\nportal\t${PREFIX}:kvol\t1\t10.66.6.1:3260\nlun\t${PREFIX}:kvol\t1\t0\tiblock_0/kvol\n${acls.map((a) => `acl\t${PREFIX}:kvol\t1\t${a}\n`).join('')}`);
  const argv = (s: ReturnType<typeof facts>) => lioAddAclActions(s.tpgs, NEW).map((a) => (a.kind === 'command' ? a.argv.join(' ') : a.kind));
  it('generate_node_acls=0: one acls create, then saveconfig; listed already: nothing', () => {
    expect(argv(facts('generate_node_acls=0\tauthentication=0', [`${PREFIX}:node01`]))).toEqual([`targetcli /iscsi/${PREFIX}:kvol/tpg1/acls create ${NEW}`, 'targetcli saveconfig']);
    expect(argv(facts('generate_node_acls=0', [NEW.toUpperCase()]))).toEqual([]);
  });
  it('demo mode with ACLs listed: the new worker is listed too; demo mode without ACLs: nothing', () => {
    expect(argv(facts('generate_node_acls=1', [`${PREFIX}:node01`]))).toHaveLength(2);
    expect(argv(facts('generate_node_acls=1', []))).toEqual([]);
  });
});

describe('the initiator-acl phase of node bootstrap', () => {
  const inv = (driver: 'scst' | 'lio') => parseInventory(VALID_INVENTORY.replace('targetDriver: scst', `targetDriver: ${driver}`), '/site/inventory.yaml', {});
  const base = (host: string): StorageFacts => ({ host, drbdProblems: [], vg: null, vgProblem: null, lvs: [], lv: null, pvProblem: null });
  const scst = (text: string, running = text): StorageFacts => ({ ...base('data1'), scst: { conf: parseScstConf(text), text, exists: true, running: parseScstConf(running), mode: '0600' } });

  it('runs on both storage servers and reads only the targets (no DRBD, no LVM)', () => {
    const p = initiatorAclPhase(inv('lio'), NEW);
    expect(p?.hosts).toEqual(['data1', 'data2']);
    expect(p?.checks?.('data1').map((c) => c[3])).toEqual(['lio-facts']);
    expect(initiatorAclPhase(inv('scst'), NEW)?.checks?.('data1').map((c) => (c[0] === 'sh' ? c[3] : c[0]))).toEqual(['read-conf', 'scst-running', 'stat']);
  });

  it('SCST with access groups: the file (same mode) and scstadmin -config; in force already but not in the file: the file only', () => {
    const site = volumeSite(inv('scst'));
    const r = aclPlan(site, 'data1', scst(ACL_CONF), NEW);
    expect(r.actions.map((a) => a.kind)).toEqual(['file', 'command']);
    expect(r.actions[0]).toMatchObject({ kind: 'file', file: { path: '/etc/scst.conf', mode: '0600' }, label: `INITIATOR ${NEW} in GROUP workers of ${PREFIX}:mail` });
    expect(r.actions[1]).toMatchObject({ argv: ['scstadmin', '-noprompt', '-config', '/etc/scst.conf'] });
    const written = (r.actions[0] as { file: { content: string } }).file.content;
    expect(aclPlan(site, 'data1', scst(written), NEW).actions).toEqual([]);
    // the file has it but the configuration in force does not (edited, never applied): apply
    expect(aclPlan(site, 'data1', scst(written, ACL_CONF), NEW).actions.map((a) => a.kind)).toEqual(['command']);
  });

  it('demo mode (no groups; LIO generate_node_acls=1 without ACLs): unchanged, and an info finding says why', () => {
    const s = aclPlan(volumeSite(inv('scst')), 'data1', scst(SITE_CONF), NEW);
    expect(s.actions).toEqual([]);
    expect(s.findings).toEqual([expect.objectContaining({ severity: 'info', found: expect.stringContaining('no enssib target in /etc/scst.conf keeps its LUN in an access group'), why: expect.stringContaining('nothing to add') })]);
    const lio = aclPlan(volumeSite(inv('lio')), 'data2', { ...base('data2'), lio: parseLioFacts(readFileSync(join(import.meta.dirname, '..', 'storage', 'fixtures', 'lio-facts-export.txt'), 'utf8')) }, NEW);
    expect(lio.actions).toEqual([]);
    expect(lio.findings[0]?.found).toMatch(/LIO demo mode: generate_node_acls=1/);
  });

  it('LIO with CHAP on a TPG that uses ACLs: the ACL is added and a warning says it needs credentials', () => {
    const lio = parseLioFacts(`tpg\t${PREFIX}:kvol\t1\t1\tgenerate_node_acls=0\tauthentication=1\ntpg\tiqn.2001-01.org.other:x\t1\t1\tgenerate_node_acls=0\n`);
    const r = aclPlan(volumeSite(inv('lio')), 'data1', { ...base('data1'), lio }, NEW);
    expect(r.actions.map((a) => (a.kind === 'command' ? a.argv.join(' ') : a.kind))).toEqual([`targetcli /iscsi/${PREFIX}:kvol/tpg1/acls create ${NEW}`, 'targetcli saveconfig']);
    expect(r.findings).toEqual([expect.objectContaining({ severity: 'warning', found: `${PREFIX}:kvol tpg1 asks for CHAP (authentication=1)` })]);
  });

  it('two groups holding the volume: the host fails with the reason and that nothing was changed', () => {
    const two = ACL_CONF.replace('\t\t\tcpu_mask ff\n\t\t}\n', `\t\t\tcpu_mask ff\n\t\t}\n\t\tGROUP admins {\n\t\t\tLUN 0 mail\n\t\t}\n`);
    expect(() => aclPlan(volumeSite(inv('scst')), 'data1', scst(two), NEW)).toThrow(/data1: target .* 2 access groups/);
  });
});
