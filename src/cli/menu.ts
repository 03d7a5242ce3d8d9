import type { Command } from 'commander';
import { COMMANDS } from './commands.js';

/**
 * `enssib` alone in a terminal: pick a command, answer its arguments, and get
 * back the argv to run — the very same code path as typing it.
 */
export async function menu(_program: Command): Promise<string[] | null> {
  const { select, input, confirm } = await import('@inquirer/prompts');
  try {
    const choice = await select({
      message: 'What do you want to do?',
      pageSize: 20,
      choices: [
        ...COMMANDS.map((c) => ({ value: c.path.join(' '), name: c.path.join(' '), description: c.summary })),
        { value: '', name: 'quit' },
      ],
    });
    if (choice === '') return null;
    const spec = COMMANDS.find((c) => c.path.join(' ') === choice);
    if (!spec) return null;
    const argv = [...spec.path];
    for (const a of spec.args ?? []) {
      const required = a.syntax.startsWith('<');
      const answer = await input({
        message: `${a.syntax} — ${a.description}${required ? '' : ' (optional, space-separated)'}`,
        validate: (v) => (required && v.trim() === '' ? 'required' : true),
      });
      argv.push(...answer.trim().split(/\s+/).filter(Boolean));
    }
    if (await confirm({ message: 'Dry run first (show the commands, change nothing)?', default: true })) argv.push('--dry-run');
    process.stderr.write(`running: enssib ${argv.join(' ')}\n`);
    return argv;
  } catch (e) {
    if (e instanceof Error && e.name === 'ExitPromptError') return null;
    throw e;
  }
}
