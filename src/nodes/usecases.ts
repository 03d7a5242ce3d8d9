import type { Context } from '../context.js';
import { ExitCode } from '../errors.js';
import { hostRows } from '../inventory/usecases.js';

/** `enssib node list`: the workers as the inventory describes them. */
export async function listCommand(ctx: Context): Promise<number> {
  const rows = hostRows(ctx.inventory()).filter((r) => r.roles.includes('worker'));
  ctx.out.result(
    () => rows,
    () => ctx.out.table(['WORKER', 'ADDRESS', 'POD SUBNET', 'SSH'], rows.map((r) => [r.name, r.address, r.podSubnet ?? '-', r.ssh])),
  );
  return ExitCode.ok;
}
