import type * as Commander from 'commander';
import { requireCjs } from '../require.js';
import { COMMANDS, type CommandSpec } from './commands.js';
import { argWhat, promptCheck } from './values.js';

const { Option } = requireCjs('commander') as typeof Commander;

export type MenuChoice = { argv: string[]; dryRun: boolean } | 'quit' | 'interrupted';

const interrupted = (e: unknown) => e instanceof Error && e.name === 'ExitPromptError';

/** Host names of the inventory for the checks of host answers; none when it does not load (the command will say why). */
async function inventoryHosts(env: NodeJS.ProcessEnv): Promise<{ all: string[]; workers: string[] } | undefined> {
  try {
    const { locateInventory, loadInventory } = await import('../inventory/load.js');
    const inv = loadInventory(locateInventory(undefined, env, process.cwd()), env);
    return { all: inv.hosts.map((h) => h.name), workers: inv.workers().map((h) => h.name) };
  } catch {
    return undefined;
  }
}

/**
 * `enssib` alone in a terminal: pick a command, answer its arguments and
 * options (each answer checked as it is typed, by the same check as the
 * command line), and get back the argv to run — the very same code path as
 * typing it.
 */
export async function menu(env: NodeJS.ProcessEnv): Promise<MenuChoice> {
  const { select, input, confirm, checkbox } = await import('@inquirer/prompts');
  try {
    const choice = await select({
      message: 'What do you want to do?',
      pageSize: 20,
      choices: [
        ...COMMANDS.map((c) => ({ value: c.path.join(' '), name: c.path.join(' '), description: c.summary })),
        { value: '', name: 'quit' },
      ],
    });
    if (choice === '') return 'quit';
    const spec = COMMANDS.find((c) => c.path.join(' ') === choice) as CommandSpec;
    const hosts = await inventoryHosts(env);
    const argv = [...spec.path];
    for (const a of spec.args ?? []) {
      const required = a.syntax.startsWith('<');
      const many = a.syntax.includes('...');
      const check = a.value ? promptCheck(a.value, argWhat(spec, a), hosts) : () => true as const;
      const answer = await input({
        message: `${a.syntax} — ${a.description}${required ? '' : ` (optional${many ? ', space-separated' : ''})`}`,
        validate: (v) => {
          const words = v.trim().split(/\s+/).filter(Boolean);
          if (words.length === 0) return required ? 'required' : true;
          if (words.length > 1 && !many) return 'one value only';
          for (const w of words) {
            const r = check(w);
            if (r !== true) return r;
          }
          return true;
        },
      });
      argv.push(...answer.trim().split(/\s+/).filter(Boolean));
    }
    const options = spec.options ?? [];
    if (options.length > 0) {
      const picked = await checkbox({
        message: 'Options (space to pick, enter to go on)',
        choices: options.map((o) => ({ value: o.flags, name: o.flags, description: o.description })),
        pageSize: 12,
      });
      for (const o of options.filter((x) => picked.includes(x.flags))) {
        const opt = new Option(o.flags, o.description);
        const flag = opt.long ?? opt.flags;
        argv.push(flag);
        if (!opt.required && !opt.optional) continue;
        const value = o.choices
          ? await select({ message: `${flag} — ${o.description}`, choices: o.choices.map((c) => ({ value: c, name: c })) })
          : await input({ message: `${flag} — ${o.description}`, validate: o.value ? promptCheck(o.value, flag, hosts) : (v) => (v.trim() === '' ? 'required' : true) });
        argv.push(value.trim());
      }
    }
    const dryRun = spec.changes === true && (await confirm({ message: 'Dry run first (show the commands, change nothing)?', default: true }));
    if (dryRun) argv.push('--dry-run');
    process.stderr.write(`running: enssib ${argv.join(' ')}\n`);
    return { argv, dryRun };
  } catch (e) {
    if (interrupted(e)) return 'interrupted';
    throw e;
  }
}

/** After a dry run from the menu: the same command for real, if the user says so. */
export async function offerApply(argv: string[]): Promise<string[] | 'no' | 'interrupted'> {
  const { confirm } = await import('@inquirer/prompts');
  const real = argv.filter((a) => a !== '--dry-run');
  try {
    const yes = await confirm({ message: `Apply now: enssib ${real.join(' ')}?`, default: false });
    if (!yes) return 'no';
    process.stderr.write(`running: enssib ${real.join(' ')}\n`);
    return real;
  } catch (e) {
    if (interrupted(e)) return 'interrupted';
    throw e;
  }
}
