import type * as Commander from 'commander';
import type Ipaddr from 'ipaddr.js';
import { UsageError } from '../errors.js';
import { parseSize, validateName } from '../validate.js';
import type { Invocation } from '../usecase.js';
import { COMMANDS, type ArgSpec, type CommandSpec, type ValueKind } from './commands.js';
import { requireCjs } from '../require.js';

const { Option } = requireCjs('commander') as typeof Commander;

/**
 * The one check of a typed value by its kind, used before a command loads
 * anything (bad names and sizes never reach the inventory or a host) and by
 * the menu while the answer is typed. `hosts` (when known) also checks that a
 * host is in the inventory. Throws a UsageError; `what` names the value.
 */
export function checkValue(kind: ValueKind, value: string, what: string, hosts?: { all: string[]; workers: string[] }): void {
  switch (kind) {
    case 'volume':
      validateName('volume', value);
      return;
    case 'service':
      validateName('service', value);
      return;
    case 'name':
      validateName(what, value, 253);
      return;
    case 'node':
      validateName('host', value);
      return;
    case 'size':
      parseSize(value, what);
      return;
    case 'host':
    case 'worker':
    case 'hosts': {
      const list = kind === 'hosts' ? value.split(',').map((h) => h.trim()) : [value];
      if (list.every((h) => h === '')) throw new UsageError(`${what} is empty`, ['Name hosts of the inventory, comma-separated: e.g. data1,data2.']);
      for (const h of list) {
        if (h === '') throw new UsageError(`${what} ${JSON.stringify(value)} has an empty host name`, ['Name hosts of the inventory, comma-separated: e.g. data1,data2.']);
        validateName('host', h);
        const known = kind === 'worker' ? hosts?.workers : hosts?.all;
        if (known && !known.includes(h)) throw new UsageError(`no ${kind === 'worker' ? 'worker' : 'host'} "${h}" in the inventory`, [`Known: ${known.join(', ') || 'none'}`]);
      }
      return;
    }
    case 'seconds':
      if (!/^\d{1,5}$/.test(value.trim()) || Number(value) > 86_400) throw new UsageError(`${what} ${JSON.stringify(value.slice(0, 40))} is not a number of seconds (0–86400)`);
      return;
    case 'ipv4':
      // ipaddr.js is loaded only by the commands that take an address.
      if (!(requireCjs('ipaddr.js') as typeof Ipaddr).IPv4.isValidFourPartDecimal(value)) throw new UsageError(`${what} ${JSON.stringify(value.slice(0, 60))} is not an IPv4 address`, ['e.g. 192.168.66.20']);
      return;
    case 'file':
      if (value === '') throw new UsageError(`${what} is empty`);
      return;
    case 'command': {
      const words = value.trim().split(/\s+/).join(' ');
      if (!COMMANDS.some((c) => c.path.join(' ') === words || c.path.join(' ').startsWith(`${words} `))) {
        throw new UsageError(`${what} ${JSON.stringify(value.slice(0, 60))} is not a command of enssib`, [`e.g. ${commandWords().slice(0, 4).join(', ')}`]);
      }
      return;
    }
    case 'text':
      return;
  }
}

/** The first words of the commands that change something (what the journal records), for `--command`. */
export function commandWords(): string[] {
  return [...new Set(COMMANDS.filter((c) => c.changes).map((c) => c.path[0] as string))];
}

/** The same check as an inquirer `validate`: true, or the message to show under the prompt. */
export function promptCheck(kind: ValueKind, what: string, hosts?: { all: string[]; workers: string[] }) {
  return (v: string): string | true => {
    try {
      checkValue(kind, v.trim(), what, hosts);
      return true;
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      return [e.message, ...e.details].join(' — ');
    }
  };
}

/** Checks every argument and option of an invocation by the kind the command table gives it. */
export function checkInvocation(spec: CommandSpec, inv: Invocation): void {
  (spec.args ?? []).forEach((a, i) => {
    const v = inv.args[i];
    if (!a.value) return;
    for (const one of Array.isArray(v) ? v : v === undefined ? [] : [v]) checkValue(a.value, one, argWhat(spec, a));
  });
  for (const o of spec.options ?? []) {
    if (!o.value || o.value === 'seconds' || o.value === 'ipv4') continue; // their use case explains them in context
    const opt = new Option(o.flags);
    const v = inv.opts[opt.attributeName()];
    if (typeof v === 'string') checkValue(o.value, v, o.value === 'name' ? opt.attributeName() : (opt.long ?? o.flags));
  }
}

/** How an argument is named in messages: "size", "new size", "secret name", "volume". */
export function argWhat(spec: CommandSpec, a: ArgSpec): string {
  if (a.value === 'name') return spec.path[0] ?? 'name';
  if (a.value === 'size') return spec.path.includes('resize') ? 'new size' : 'size';
  return a.syntax.replace(/[<>[\].]/g, '');
}
