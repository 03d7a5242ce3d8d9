import type { Context } from '../context.js';
import { execute } from '../engine/execute.js';
import type { Plan } from '../engine/types.js';
import { UsageError } from '../errors.js';

/** The read-only plan of `enssib doctor`: each host answers over ssh and says what it runs. */
export function doctorPlan(hosts: string[]): Plan {
  return {
    title: 'doctor',
    mutating: false,
    phases: [
      {
        title: 'reach every host over ssh',
        hosts,
        continueOnError: true,
        plan: () => [
          { kind: 'command', argv: ['uname', '-nr'], label: 'kernel' },
          { kind: 'command', argv: ['sh', '-c', '. /etc/os-release && echo "$PRETTY_NAME"'], label: 'system' },
        ],
      },
    ],
  };
}

export async function doctorCommand(ctx: Context, inv: { opts: Record<string, unknown> }): Promise<number> {
  const all = ctx.inventory().hosts.map((h) => h.name);
  const wanted = typeof inv.opts.host === 'string' ? inv.opts.host.split(',').map((s) => s.trim()).filter(Boolean) : all;
  const unknown = wanted.filter((h) => !all.includes(h));
  if (unknown.length > 0) throw new UsageError(`--host: no host ${unknown.map((u) => `"${u}"`).join(', ')} in the inventory`, [`Known hosts: ${all.join(', ')}`]);
  const report = await execute(ctx, doctorPlan(wanted));
  return report.exitCode;
}
