import { command } from '../storage/volume.js';
import { rawProbe, probePhase, valueKey } from '../engine/probe.js';
import type { Plan } from '../engine/types.js';
import { OperationError, UsageError } from '../errors.js';

/**
 * `enssib backup schedule`: a systemd service and timer for the machine enssib
 * runs on, as text. The service backs up every volume, then prunes by the
 * inventory's retention only when every backup succeeded (ExecStartPost does
 * not run after a failed ExecStart); the timer is Persistent, so a run missed
 * while the machine was off happens at the next boot.
 */

export interface ScheduleRequest {
  /** Absolute paths: node, enssib's launcher, the inventory. */
  node: string;
  bin: string;
  inventory: string;
  /** "HH:MM", local time of the machine. */
  at: string;
  /** Where the units go (default /etc/systemd/system). */
  unitDir?: string;
}

export const UNIT_DIR = '/etc/systemd/system';
export const SERVICE = 'enssib-backup.service';
export const TIMER = 'enssib-backup.timer';
/** The first line of every unit enssib writes: `--install` replaces only a file that has it (or with --force). */
export const UNIT_MARKER = '# Written by enssib (backup schedule --install): enssib replaces this file; remove this line to keep it yours.';

export interface UnitFile {
  path: string;
  content: string;
}

export function validateAt(value: unknown): string {
  const v = value === undefined ? '02:00' : String(value);
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(v);
  if (!m) throw new UsageError(`--at ${JSON.stringify(v).slice(0, 40)}: expected a time of day HH:MM, such as 02:00`);
  return v;
}

/** A path systemd reads as one word, as it is: absolute, no whitespace, quotes, backslash or specifier (%). */
function unitPath(what: string, p: string): string {
  if (!/^\/[A-Za-z0-9/._+@-]*$/.test(p)) {
    throw new UsageError(`${what} ${JSON.stringify(p)} cannot go into a systemd unit as it is (expected an absolute path of letters, digits and / . _ + @ -)`, [
      'Move it to such a path, or write the units yourself from: enssib backup schedule',
    ]);
  }
  return p;
}

export function scheduleUnits(r: ScheduleRequest): [UnitFile, UnitFile] {
  const cmd = (args: string) => `${unitPath('node', r.node)} ${unitPath('enssib', r.bin)} -i ${unitPath('the inventory', r.inventory)} ${args}`;
  const service = [
    UNIT_MARKER,
    '[Unit]',
    'Description=enssib: back up every volume from LVM snapshots, then prune by the retention',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    'Environment=NO_COLOR=1',
    `ExecStart=${cmd('backup snapshot --all')}`,
    `ExecStartPost=${cmd('backup prune --yes')}`,
    '',
  ].join('\n');
  const timer = [
    UNIT_MARKER,
    '[Unit]',
    'Description=enssib: daily backup of every volume',
    '',
    '[Timer]',
    `OnCalendar=*-*-* ${r.at}:00`,
    'Persistent=true',
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n');
  const dir = unitPath('the unit folder', r.unitDir ?? UNIT_DIR).replace(/(.)\/+$/, '$1');
  return [
    { path: `${dir}/${SERVICE}`, content: service },
    { path: `${dir}/${TIMER}`, content: timer },
  ];
}

/** The units there now that enssib did not write (no marker line), from `cat` of each: refused unless --force. */
export function foreignUnits(units: readonly UnitFile[], now: readonly { exitCode: number; stdout: string }[]): string[] {
  return units.filter((u, i) => {
    const r = now[i];
    return r !== undefined && r.exitCode === 0 && !r.stdout.split('\n').includes(UNIT_MARKER);
  }).map((u) => u.path);
}

export const PHASE_WRITE_UNITS = 'write the backup service and timer';
export const PHASE_ENABLE = 'enable and start the backup timer';
/** The timer's file changes in this run: a running timer is restarted so that its new schedule counts. */
const TIMER_CHANGED = valueKey<boolean>('schedule.timer-changed');

/**
 * `backup schedule --install` on the machine enssib runs on (`host`): write
 * the two units (refusing one enssib did not write, unless `force`), reload
 * systemd when a file changed, enable and start the timer. A re-run with the
 * same units changes nothing.
 */
export function installPlan(units: readonly [UnitFile, UnitFile], host: string, opts: { force: boolean }): Plan {
  const cat = (u: UnitFile) => rawProbe(['cat', '--', u.path]);
  const [service, timer] = units;
  return {
    title: 'backup schedule --install',
    mutating: true,
    phases: [
      probePhase({
        title: PHASE_WRITE_UNITS,
        hosts: [host],
        probes: () => ({ service: cat(service), timer: cat(timer) }),
        decide: (_h, f, state) => {
          if (!f) return;
          const foreign = foreignUnits(units, [f.service, f.timer]);
          if (foreign.length > 0 && !opts.force) {
            throw new OperationError(`${foreign.join(' and ')} ${foreign.length > 1 ? 'exist' : 'exists'} and enssib did not write ${foreign.length > 1 ? 'them' : 'it'} (no "${UNIT_MARKER.slice(0, 30)}…" line)`, [
              'Nothing was changed. Look at it; replace it with --force, or remove it first.',
            ]);
          }
          state.values.set(TIMER_CHANGED, f.timer.stdout !== timer.content);
        },
        plan: () => units.map((u) => ({ kind: 'file', file: { path: u.path, content: u.content, mode: '0644' }, label: 'systemd unit', notify: ['daemon-reload'] })),
        handlers: { 'daemon-reload': () => [command(['systemctl', 'daemon-reload'], 'systemd reads the units again')] },
      }),
      probePhase({
        title: PHASE_ENABLE,
        hosts: [host],
        probes: () => ({ enabled: rawProbe(['systemctl', 'is-enabled', TIMER]), active: rawProbe(['systemctl', 'is-active', TIMER]) }),
        plan: (_h, f, state) => {
          if (!f || f.enabled.stdout.trim() !== 'enabled' || f.active.stdout.trim() !== 'active') return [command(['systemctl', 'enable', '--now', TIMER], 'at boot, and from now')];
          return state.values.get(TIMER_CHANGED) ? [command(['systemctl', 'restart', TIMER], 'its new schedule counts')] : [];
        },
      }),
    ],
  };
}
