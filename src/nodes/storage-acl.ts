import { probePhase, readProbes, type FactsOf } from '../engine/probe.js';
import type { Action, Finding, Phase } from '../engine/types.js';
import { OperationError } from '../errors.js';
import type { Inventory } from '../inventory/inventory.js';
import { lioAddAclActions, lioUsesAcls } from '../storage/targets/lio.js';
import { SCST_CONF, addInitiator, applyArgv, renderScstConf } from '../storage/targets/scst.js';
import { command, storageFacts, storageProbes, volumeSite, type StorageFacts, type VolumeSite } from '../storage/volume.js';

/**
 * The new worker's initiator on the storage servers: where the volume
 * targets admit initiators by ACL, the worker's initiator name is added on
 * both servers, persisted, and nothing else is touched. LIO: each TPG of an
 * enssib target (`<storage.iqnPrefix>:<volume>`) with generate_node_acls=0 or
 * ACLs listed gets an ACL for it (`targetcli … acls create`, `saveconfig`).
 * SCST: each such target whose volume LUN sits in a GROUP gets an `INITIATOR`
 * line in that group of /etc/scst.conf (the structured editor keeps every
 * other line), applied with `scstadmin -config`. Targets in demo mode (LIO
 * generate_node_acls=1 without ACLs, SCST LUNs in the default group) admit
 * every initiator on the cluster network: nothing to add, and the phase says so.
 */

const probesOf = (site: VolumeSite) => storageProbes(site, { drbd: false, lvm: false });

/** What adding the initiator means on one storage server: the actions, and what to tell. */
export function aclPlan(site: VolumeSite, host: string, f: StorageFacts, initiator: string): { actions: Action[]; findings: Finding[] } {
  const prefix = `${site.iqnPrefix}:`;
  const info = (found: string, why: string): Finding => ({ severity: 'info', host, check: 'initiator-acl', found, why, fix: [] });
  if (f.scst) {
    let edit;
    try {
      edit = addInitiator(f.scst.conf, site.iqnPrefix, initiator);
    } catch (e) {
      throw new OperationError(`${host}: ${(e as Error).message}`, ['Nothing was changed.']);
    }
    const listed = edit.targets.filter((t) => t.group !== null);
    if (listed.length === 0) return { actions: [], findings: [info(`no enssib target in ${SCST_CONF} keeps its LUN in an access group (GROUP/INITIATOR)`, 'every initiator on the cluster network sees the default group: nothing to add')] };
    const text = renderScstConf(edit.conf);
    const running = addInitiator(f.scst.running, site.iqnPrefix, initiator).targets.some((t) => t.added);
    const actions: Action[] = [];
    if (text !== f.scst.text) actions.push({ kind: 'file', file: { path: SCST_CONF, content: text, mode: f.scst.mode, owner: 'root:root' }, label: `INITIATOR ${initiator} in ${edit.targets.filter((t) => t.added).map((t) => `GROUP ${t.group ?? ''} of ${t.iqn}`).join(', ')}` });
    if (actions.length > 0 || running) actions.push(command(applyArgv(), 'apply the differences'));
    return { actions, findings: [] };
  }
  const tpgs = (f.lio?.tpgs ?? []).filter((t) => t.iqn.startsWith(prefix));
  const acl = tpgs.filter(lioUsesAcls);
  if (acl.length === 0) return { actions: [], findings: [info('no enssib target uses ACLs (LIO demo mode: generate_node_acls=1, no ACL listed)', 'every initiator on the cluster network may log in: nothing to add')] };
  const actions = lioAddAclActions(acl, initiator);
  const chap = acl.filter((t) => t.attributes.authentication === '1' && !t.acls.some((a) => a.toLowerCase() === initiator.toLowerCase()));
  const findings: Finding[] = chap.map((t) => ({
    severity: 'warning',
    host,
    check: 'initiator-acl',
    found: `${t.iqn} tpg${t.tag} asks for CHAP (authentication=1)`,
    why: `the new ACL of ${initiator} has no credentials: the worker cannot log in until it has`,
    fix: [`targetcli /iscsi/${t.iqn}/tpg${t.tag}/acls/${initiator} set auth userid=… password=… (as for the other workers)`],
  }));
  return { actions, findings };
}

/** The phase on the storage servers (null without storage servers in the inventory). */
export function initiatorAclPhase(inv: Inventory, initiator: string): Phase | null {
  if (inv.storageServers().length === 0) return null;
  const site = volumeSite(inv);
  const probes = probesOf(site);
  const facts = (h: string, raw: FactsOf<typeof probes>) => storageFacts(site, h, null, raw);
  const where = site.driver === 'scst' ? `the access groups of ${SCST_CONF}` : 'the TPG ACLs';
  return probePhase({
    id: 'initiator-acl',
    title: `storage servers: ${initiator} in ${where} of the volume targets that use them (demo-mode targets need nothing)`,
    hosts: site.servers.map((s) => s.name),
    probes: () => probes,
    verify: (h, raw) => aclPlan(site, h, facts(h, readProbes(probes, raw)), initiator).findings,
    plan: (h, f) => {
      if (f) return aclPlan(site, h, facts(h, f), initiator).actions;
      const when = 'if an enssib target admits initiators by';
      return site.driver === 'scst'
        ? [
            { kind: 'task', label: `edit ${SCST_CONF}: add one line, keep every other line as it is`, lines: [`INITIATOR ${initiator}   # only ${when} access group (its volume's LUN in a GROUP) and does not list it yet; demo mode: nothing`], run: () => Promise.reject(new OperationError('internal: the SCST edit needs the facts of the storage server')) },
            command(applyArgv(), 'if the file changed: apply the differences'),
          ]
        : [command(['targetcli', '/iscsi/<target>/tpg<n>/acls', 'create', initiator], `${when} ACL (generate_node_acls=0 or ACLs listed) and has none for it; demo mode: nothing`), command(['targetcli', 'saveconfig'], 'if an ACL was added: persist the LIO configuration')];
    },
  });
}
