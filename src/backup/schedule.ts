import { UsageError } from '../errors.js';

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
}

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

export function scheduleUnits(r: ScheduleRequest): UnitFile[] {
  const cmd = (args: string) => `${unitPath('node', r.node)} ${unitPath('enssib', r.bin)} -i ${unitPath('the inventory', r.inventory)} ${args}`;
  const service = [
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
  return [
    { path: '/etc/systemd/system/enssib-backup.service', content: service },
    { path: '/etc/systemd/system/enssib-backup.timer', content: timer },
  ];
}
