/**
 * A rollback timer on a host, for a change that may cut enssib's own ssh
 * connection (MTU, routes, a firewall rule): armed just before the change, it
 * runs the undo command on the host after `seconds` unless enssib — having
 * re-opened its connection (`Host.close()`, then any command opens a new
 * master) and checked the host — disarms it first. The timer runs in its own
 * session on the host, so neither the end of the ssh session nor the remote
 * supervisor stops it. Commands only: the engine runs them like any other.
 */

const TIMER = 'f=$1 s=$2; shift 2; sleep "$s"; if [ -e "$f" ]; then rm -f "$f"; exec "$@"; fi';
const ARM = 't=$1 f=$2; shift; : > "$f" || exit 1; setsid sh -c "$t" enssib-rollback "$@" </dev/null >/dev/null 2>&1 &';
/** Exit code of the disarm command when the timer had already fired (the undo ran). */
export const ROLLBACK_FIRED_EXIT = 3;
const DISARM = `if [ -e "$1" ]; then rm -f "$1"; else exit ${ROLLBACK_FIRED_EXIT}; fi`;

export function rollbackFile(id: string, dir = '/run'): string {
  if (!/^[A-Za-z0-9_.-]{1,80}$/.test(id)) throw new Error(`rollback timer id ${JSON.stringify(id)}: letters, digits, . _ - only`);
  return `${dir}/enssib-rollback.${id}`;
}

/** Arms the timer: after `seconds`, `undo` runs on the host unless disarmed. */
export function armRollbackArgv(id: string, seconds: number, undo: readonly string[], dir?: string): string[] {
  if (!Number.isInteger(seconds) || seconds < 1) throw new Error(`rollback timer: ${seconds} is not a whole number of seconds`);
  if (undo.length === 0) throw new Error('rollback timer: no undo command');
  return ['sh', '-c', ARM, 'enssib-arm', TIMER, rollbackFile(id, dir), String(seconds), ...undo];
}

/** Disarms the timer; exits ROLLBACK_FIRED_EXIT when it had already fired. */
export function disarmRollbackArgv(id: string, dir?: string): string[] {
  return ['sh', '-c', DISARM, 'enssib-disarm', rollbackFile(id, dir)];
}
