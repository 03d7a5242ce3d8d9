import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { probe, probePhase, valueKey } from '../engine/probe.js';
import { LOCAL, type Action, type Phase, type RunState } from '../engine/types.js';
import { InterruptedError, OperationError } from '../errors.js';
import { isRecord, str } from '../k8s/types.js';
import { armRollbackArgv, disarmRollbackArgv, rollbackFile, ROLLBACK_FIRED_EXIT } from '../remote/rollback.js';
import type { HookRun } from '../remote/hook.js';
import { readManifests } from '../services/manifests.js';
import { listServices, loadService } from '../site/folder.js';
import { workerProbes } from '../storage/initiator.js';
import { workerHold } from '../storage/volume-delete.js';
import { command, iqnOf, type VolumeSite } from '../storage/volume.js';

/**
 * Quiescing a volume before its snapshot, declared by the services that use it:
 *
 * - hooks: `services/<name>/hooks/pre-snapshot.mjs` (and `post-snapshot.mjs`),
 *   zx scripts run by enssib on its own machine with the service's context in
 *   the environment. A pre hook that fails fails that volume's backup before
 *   its snapshot; the post hook runs whenever the pre hook ran.
 * - freeze: `backup: { freeze: true }` in the service's `enssib.yaml`: the
 *   filesystem is frozen (`fsfreeze -f`) on the worker that has the volume
 *   mounted, around the `lvcreate --snapshot`. Before freezing, a timer is
 *   armed ON THAT WORKER (remote/rollback.ts: a detached `sleep` in its own
 *   session) that thaws it after `freezeSeconds` even if enssib or its
 *   connection dies; enssib thaws right after the snapshot, then disarms it.
 *
 * A volume belongs to the services whose Kubernetes YAML names its iSCSI IQN
 * (`iscsi.iqn: <iqnPrefix>:<volume>`, in a Pod template or a
 * PersistentVolume). Only the folders that declare a hook or a freeze are read.
 */

export const PRE_HOOK = 'pre-snapshot.mjs';
export const POST_HOOK = 'post-snapshot.mjs';
export const DEFAULT_FREEZE_SECONDS = 30;
/** How long a hook may run before it is stopped. */
export const HOOK_TIMEOUT_S = 300;

export interface ServiceQuiesce {
  service: string;
  /** The service's folder (the hooks run there). */
  dir: string;
  namespace: string;
  pre: string | null;
  post: string | null;
}

export interface VolumeQuiesce {
  services: ServiceQuiesce[];
  /** Seconds after which the worker thaws the filesystem by itself; null: no freeze. */
  freezeSeconds: number | null;
}

/** Every `iscsi.iqn` named anywhere in an object (Pod templates, PersistentVolumes, inline volumes). */
export function iscsiIqns(o: unknown, out: string[] = []): string[] {
  if (Array.isArray(o)) for (const x of o) iscsiIqns(x, out);
  else if (isRecord(o)) {
    for (const [k, v] of Object.entries(o)) {
      if (k === 'iscsi' && isRecord(v) && typeof v.iqn === 'string') out.push(v.iqn);
      else iscsiIqns(v, out);
    }
  }
  return out;
}

/**
 * What quiesces each of `volumes`, from the service folders under `root`
 * (absent: nothing). Folders that declare neither a hook nor a freeze are not
 * read; one that does and cannot be read is an error (its YAML says which
 * volumes it flushes).
 */
export function findQuiesce(root: string, site: Pick<VolumeSite, 'iqnPrefix'>, defaultNamespace: string, volumes: readonly string[]): Map<string, VolumeQuiesce> {
  const out = new Map<string, VolumeQuiesce>();
  if (!existsSync(root)) return out;
  const byIqn = new Map(volumes.map((v) => [iqnOf(site, v), v]));
  for (const name of listServices(root)) {
    const dir = join(root, name);
    const hook = (f: string) => (existsSync(join(dir, 'hooks', f)) ? join(dir, 'hooks', f) : null);
    const pre = hook(PRE_HOOK);
    const post = hook(POST_HOOK);
    const settings = existsSync(join(dir, 'enssib.yaml')) ? loadService(root, name).settings.backup : undefined;
    if (!pre && !post && !settings?.freeze) continue;
    for (const m of readManifests(dir)) {
      const ns = str(isRecord(m.object.metadata) ? m.object.metadata.namespace : undefined) ?? defaultNamespace;
      for (const iqn of iscsiIqns(m.object)) {
        const volume = byIqn.get(iqn);
        if (!volume) continue;
        const q = out.get(volume) ?? { services: [], freezeSeconds: null };
        if (!q.services.some((s) => s.service === name)) q.services.push({ service: name, dir, namespace: ns, pre, post });
        if (settings?.freeze) q.freezeSeconds = Math.min(q.freezeSeconds ?? Infinity, settings.freezeSeconds ?? DEFAULT_FREEZE_SECONDS);
        out.set(volume, q);
      }
    }
  }
  return out;
}

export const PHASE_MOUNTS = 'find where the volume is mounted on the workers';
export const PHASE_PRE_HOOK = 'run the pre-snapshot hooks';
export const PHASE_ARM = 'flush the filesystem and arm its thaw timer on the worker';
export const PHASE_FREEZE = 'freeze the filesystem on the worker';
export const PHASE_THAW = 'thaw the filesystem on the worker';
export const PHASE_DISARM = 'disarm the thaw timer on the worker';
export const PHASE_POST_HOOK = 'run the post-snapshot hooks';
export const PHASE_THAW_ALWAYS = 'thaw the filesystem and disarm its timer, if still armed';
export const PHASE_POST_ALWAYS = 'run the post-snapshot hooks, if not run yet';

/** Where the volume's filesystem is mounted: the worker and one of its mount points (any one freezes the filesystem). */
export interface FreezeAt {
  host: string;
  mountpoint: string;
}

export const FREEZE_AT = valueKey<FreezeAt[]>('quiesce.freeze-at');
/** This run armed the thaw timer (so it, and only it, may disarm it). */
export const ARMED = valueKey<true>('quiesce.armed');
/** This run started the pre hooks (so the post hooks run, whatever happens next). */
export const PRE_RAN = valueKey<true>('quiesce.pre-ran');
export const POST_RAN = valueKey<true>('quiesce.post-ran');

/** The id of a volume's thaw timer on a worker (its flag file in /run). */
export function thawTimerId(volume: string): string {
  return `thaw-${volume}`;
}

/**
 * What the timer runs: thaw, then thaw again every 5 s for 30 s — a freeze
 * whose own flush outlasted the timer is thawed too (a thaw of a filesystem
 * that is not frozen fails harmlessly).
 */
const THAW_LOOP = 'i=0; while [ "$i" -lt 7 ]; do fsfreeze -u "$1" 2>/dev/null; i=$((i + 1)); sleep 5; done';

export function thawTimerArgv(volume: string, mountpoint: string, seconds: number): string[] {
  return armRollbackArgv(thawTimerId(volume), seconds, ['sh', '-c', THAW_LOOP, 'enssib-thaw', mountpoint]);
}

/** Context a hook receives, in its environment. */
export interface HookContext {
  /** The inventory file (absolute). */
  inventory: string;
  /** A kubeconfig path, when one exists. */
  kubeconfig: string | null;
  backupId: string;
  /** Runs a hook (remote/hook.ts); injected, so this module only plans. */
  run: HookRun;
}

export function hookEnv(s: ServiceQuiesce, volume: string, hook: 'pre-snapshot' | 'post-snapshot', hc: Pick<HookContext, 'inventory' | 'kubeconfig' | 'backupId'>): Record<string, string> {
  return {
    ENSSIB_HOOK: hook,
    ENSSIB_SERVICE: s.service,
    ENSSIB_NAMESPACE: s.namespace,
    ENSSIB_VOLUME: volume,
    ENSSIB_BACKUP_ID: hc.backupId,
    ENSSIB_INVENTORY: hc.inventory,
    ...(hc.kubeconfig ? { KUBECONFIG: hc.kubeconfig } : {}),
  };
}

function hookActions(volume: string, q: VolumeQuiesce, hc: HookContext, hook: 'pre-snapshot' | 'post-snapshot'): Action[] {
  return q.services.flatMap((s) => {
    const script = hook === 'pre-snapshot' ? s.pre : s.post;
    if (!script) return [];
    const env = hookEnv(s, volume, hook, hc);
    return [
      {
        kind: 'task' as const,
        label: `${s.service}: ${hook} hook`,
        lines: [`zx ${script} (in ${s.dir}; ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}; stopped after ${HOOK_TIMEOUT_S} s)`],
        run: async (signal) => {
          const r = await hc.run({ script, cwd: s.dir, env, timeoutMs: HOOK_TIMEOUT_S * 1000, ...(signal ? { signal } : {}) });
          if (r.cancelled) throw new InterruptedError(`${s.service}: the ${hook} hook was stopped (interrupted twice): ${script}`);
          if (r.exitCode !== 0) {
            throw new OperationError(`${s.service}: the ${hook} hook ${r.timedOut ? `did not finish within ${HOOK_TIMEOUT_S} s` : `failed (exit code ${r.exitCode})`}: ${script}`, [
              ...r.output.slice(-10),
              hook === 'pre-snapshot' ? `No snapshot of ${volume} was taken; its post-snapshot hook runs.` : 'Check the service: its pre-snapshot hook ran.',
            ]);
          }
          return { changed: true, message: r.output.at(-1) ?? '' };
        },
      },
    ];
  });
}

const freezeAt = (state: RunState, host: string): FreezeAt | undefined => state.values.get(FREEZE_AT)?.find((f) => f.host === host);

/** The mount point to freeze on a worker; in a client dry run (nothing read, FREEZE_AT unset), a placeholder on every worker. */
const mountOf = (state: RunState, host: string, volume: string): string | null =>
  state.values.get(FREEZE_AT) === undefined ? `<where ${volume} is mounted>` : (freezeAt(state, host)?.mountpoint ?? null);

const FLAG = (volume: string) => ({ armed: probe(['test', '-e', rollbackFile(thawTimerId(volume))], (r) => r.exitCode === 0) });

export interface QuiescePhases {
  /** Read-only, with the run's other reads. */
  read: Phase[];
  /** Right before the snapshot. */
  before: Phase[];
  /** Right after it. */
  after: Phase[];
  /** First of the item's cleanup (before the snapshot is removed). */
  always: Phase[];
}

/** The phases that quiesce `volume` around its snapshot; empty when nothing declares a hook or a freeze. */
export function quiescePhases(site: VolumeSite, volume: string, q: VolumeQuiesce | undefined, hc: HookContext): QuiescePhases {
  const out: QuiescePhases = { read: [], before: [], after: [], always: [] };
  if (!q) return out;
  const pre = hookActions(volume, q, hc, 'pre-snapshot');
  const post = hookActions(volume, q, hc, 'post-snapshot');
  if (pre.length > 0) out.before.push({ title: PHASE_PRE_HOOK, hosts: [LOCAL], decide: (_h, _f, state) => state.values.set(PRE_RAN, true), plan: () => pre });
  const seconds = q.freezeSeconds;
  if (seconds !== null && site.workers.length > 0) {
    const iqn = iqnOf(site, volume);
    out.read.push(
      probePhase({
        title: PHASE_MOUNTS,
        hosts: site.workers,
        probes: () => workerProbes,
        decide: (host, f, state) => {
          if (!f) return;
          const mount = workerHold(iqn, f)?.mounts[0];
          state.values.set(FREEZE_AT, [...(state.values.get(FREEZE_AT) ?? []), ...(mount ? [{ host, mountpoint: mount.target }] : [])]);
        },
      }),
    );
    const onWorkers = (title: string, actions: (mp: string) => Action[], extra: Partial<Phase> = {}): Phase => ({
      title,
      hosts: site.workers,
      ...extra,
      plan: (host, _f, state) => {
        const mp = mountOf(state, host, volume);
        return mp === null ? [] : actions(mp);
      },
    });
    out.before.push(
      onWorkers(PHASE_ARM, (mp) => [command(['sync', '-f', '--', mp], 'the dirty data first, so the freeze itself is short', { timeoutMs: 600_000 }), command(thawTimerArgv(volume, mp, seconds), `thaws it after ${seconds} s even if enssib or its connection dies`)], {
        decide: (host, _f, state) => {
          if (mountOf(state, host, volume) !== null) state.values.set(ARMED, true);
        },
      }),
      onWorkers(PHASE_FREEZE, (mp) => [command(['fsfreeze', '-f', '--', mp], `writes to ${volume} wait until the thaw (at most ${seconds} s)`, { timeoutMs: seconds * 1000 })]),
    );
    out.after.push(
      onWorkers(PHASE_THAW, (mp) => [
        command(['fsfreeze', '-u', '--', mp], 'right after the snapshot', {
          okCodes: [0, 1],
          result: (r) => {
            if (r.exitCode !== 0) {
              throw new OperationError(`${volume}: the filesystem at ${mp} was no longer frozen when the snapshot was made (${r.stderr.trim() || 'fsfreeze -u exit code 1'})`, [
                `Its timer thaws it after ${seconds} s: the snapshot may have been taken after that, so it is not quiesced and is not kept. Raise backup.freezeSeconds in the service's enssib.yaml, or look at why the snapshot took so long.`,
              ]);
            }
          },
        }),
      ]),
      onWorkers(PHASE_DISARM, () => [command(disarmRollbackArgv(thawTimerId(volume)), 'the filesystem is thawed', { okCodes: [0, ROLLBACK_FIRED_EXIT] })]),
    );
    out.always.push(
      probePhase({
        title: PHASE_THAW_ALWAYS,
        hosts: site.workers,
        probes: () => FLAG(volume),
        plan: (host, f, state) => {
          // Only the run that armed the timer touches it (a concurrent run of the same volume stops at its lock).
          const mp = state.values.get(ARMED) ? mountOf(state, host, volume) : null;
          if (mp === null || f?.armed === false) return [];
          return [command(['fsfreeze', '-u', '--', mp], 'in case the run stopped while it was frozen', { okCodes: [0, 1] }), command(disarmRollbackArgv(thawTimerId(volume)), 'its timer', { okCodes: [0, ROLLBACK_FIRED_EXIT] })];
        },
      }),
    );
  }
  if (post.length > 0) {
    out.after.push({ title: PHASE_POST_HOOK, hosts: [LOCAL], decide: (_h, _f, state) => state.values.set(POST_RAN, true), plan: () => post });
    out.always.push({ title: PHASE_POST_ALWAYS, hosts: [LOCAL], plan: (_h, _f, state) => (state.values.get(PRE_RAN) && !state.values.get(POST_RAN) ? post : []) });
  }
  return out;
}
