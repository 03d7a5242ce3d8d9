import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { createRequire } from 'node:module';
import type { DryRun, GlobalOptions } from '../context.js';
import { ExitCode, UsageError } from '../errors.js';
import { COMMANDS, type CommandSpec } from './commands.js';
import type { Invocation } from '../usecase.js';

const GROUPS: Record<string, string> = {
  node: 'workers: bootstrap and list',
  image: 'service images: build and push to the private registry',
  service: 'services: deploy, diff, status, list, expose, new',
  secret: 'Secrets from files (contents never shown)',
  volume: 'iSCSI volumes on the storage servers',
  backup: 'LVM snapshot backups',
  inventory: 'inventory.yaml: check and show',
};

export interface MainIO {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  env?: NodeJS.ProcessEnv;
  isTTY?: boolean;
}

function version(): string {
  const req = createRequire(import.meta.url);
  return (req('../../package.json') as { version: string }).version;
}

function parseConcurrency(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 256) throw new InvalidArgumentError('expected a whole number from 1 to 256');
  return n;
}

/** `--dry-run=server` → `--dry-run --dry-run-mode server`, so that a bare --dry-run never swallows the next word. */
export function expandDryRun(argv: string[]): string[] {
  return argv.flatMap((a) => {
    const m = /^--dry-run=(.*)$/.exec(a);
    return m ? ['--dry-run', '--dry-run-mode', m[1] ?? ''] : [a];
  });
}

export function buildProgram(run: (spec: CommandSpec, inv: Invocation, cmd: Command) => Promise<void>, io: MainIO = {}): Command {
  const program = new Command('enssib');
  // Set before any subcommand is added: subcommands copy these settings.
  program.exitOverride();
  program.configureOutput({
    writeOut: (s) => (io.stdout ?? process.stdout).write(s),
    writeErr: (s) => (io.stderr ?? process.stderr).write(s),
  });
  program
    .description('Run the enssib cluster from the files in git: workers, images, services, iSCSI volumes, backups.')
    .version(version(), '-V, --version')
    .addOption(new Option('-i, --inventory <path>', 'inventory file (default: $ENSSIB_INVENTORY, then ./inventory.yaml)'))
    .addOption(new Option('-n, --dry-run', 'show the exact commands per host and contact nothing (--dry-run=server also reads facts)'))
    .addOption(new Option('--dry-run-mode <mode>').choices(['client', 'server']).hideHelp())
    .addOption(new Option('-y, --yes', 'answer yes to confirmations; never prompt'))
    .addOption(new Option('-o, --output <format>', 'text or json').choices(['text', 'json']).default('text'))
    .addOption(new Option('-c, --concurrency <n>', 'hosts worked on at once').argParser(parseConcurrency).default(10))
    .addOption(new Option('--kubeconfig <path>', 'kubeconfig (default: $KUBECONFIG, the inventory, ~/.kube/config)'))
    .addOption(new Option('--context <name>', 'kubeconfig context'))
    .addOption(new Option('--no-color', 'no colours (also NO_COLOR=1)'))
    .addOption(new Option('-v, --verbose', 'more detail, full build output, stack traces'))
    .showSuggestionAfterError(true)
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  enssib inventory check',
        '  enssib volume create mail 200G --dry-run',
        '  enssib service deploy ldap --dry-run',
        '  enssib doctor',
        '  enssib                      (in a terminal: a menu of the commands)',
        '',
        'Exit codes: 0 ok, 1 failed, 2 usage or configuration error, 3 partial failure,',
        '4 differences found, 69 not available yet, 130 interrupted.',
      ].join('\n'),
    );

  const groups = new Map<string, Command>();
  for (const spec of COMMANDS) {
    let parent = program;
    if (spec.path.length > 1) {
      const g = spec.path[0] as string;
      let group = groups.get(g);
      if (!group) {
        group = program.command(g).description(GROUPS[g] ?? g);
        groups.set(g, group);
      }
      parent = group;
    }
    const leaf = parent.command(spec.path[spec.path.length - 1] as string).description(spec.summary);
    for (const a of spec.args ?? []) leaf.argument(a.syntax, a.description);
    for (const o of spec.options ?? []) {
      const opt = new Option(o.flags, o.description);
      if (o.choices) opt.choices(o.choices);
      if (o.default !== undefined) opt.default(o.default);
      leaf.addOption(opt);
    }
    leaf.addHelpText('after', `\nExamples:\n${spec.examples.map((e) => `  ${e}`).join('\n')}`);
    leaf.action(async (...params: unknown[]) => {
      const cmd = params[params.length - 1] as Command;
      const args = params.slice(0, (spec.args ?? []).length) as Invocation['args'];
      await run(spec, { args, opts: cmd.opts() }, cmd);
    });
  }

  program
    .command('completion')
    .description('print the shell completion script')
    .argument('<shell>', 'bash or zsh')
    .addHelpText('after', '\nExamples:\n  enssib completion bash > /etc/bash_completion.d/enssib\n  source <(enssib completion zsh)')
    .action(async (shell: string) => {
      const { completionScript } = await import('./completion.js');
      process.stdout.write(completionScript(shell));
    });
  program
    .command('__complete', { hidden: true })
    .argument('[words...]')
    .helpOption(false)
    .allowUnknownOption()
    .action(async (words: string[]) => {
      const { complete } = await import('./completion.js');
      process.stdout.write(complete(program, words ?? [], process.env, process.cwd()).map((w) => `${w}\n`).join(''));
    });
  return program;
}

export function globalOptions(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as Record<string, unknown>;
  let dryRun: DryRun = false;
  if (o.dryRun || o.dryRunMode) dryRun = (o.dryRunMode as 'client' | 'server' | undefined) ?? 'client';
  return {
    ...(typeof o.inventory === 'string' ? { inventory: o.inventory } : {}),
    dryRun,
    yes: o.yes === true,
    output: o.output === 'json' ? 'json' : 'text',
    concurrency: typeof o.concurrency === 'number' ? o.concurrency : 10,
    color: o.color !== false,
    verbose: o.verbose === true,
    ...(typeof o.kubeconfig === 'string' ? { kubeconfig: o.kubeconfig } : {}),
    ...(typeof o.context === 'string' ? { context: o.context } : {}),
  };
}

/** The whole CLI: parses argv, runs one use case, prints errors, resolves the exit code. */
export async function main(argv: string[], io: MainIO = {}): Promise<number> {
  const env = io.env ?? process.env;
  const isTTY = io.isTTY ?? (process.stdin.isTTY === true && process.stdout.isTTY === true);
  if (argv.length === 0 && isTTY) {
    const { menu } = await import('./menu.js');
    const chosen = await menu(buildProgram(async () => undefined));
    if (chosen === null) return ExitCode.ok;
    return main(chosen, io);
  }
  let code: number = ExitCode.ok;
  const abort = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(ExitCode.interrupted);
    process.stderr.write('\ninterrupting: finishing the commands in flight, starting no new one (Ctrl-C again to quit now)\n');
    abort.abort();
  };
  const program = buildProgram(async (spec, inv, cmd) => {
    const opts = globalOptions(cmd);
    const [{ createOutput }, { createPrompter }, { createContext }, { printError }, { inventoryLoader }] = await Promise.all([
      import('../ui/output.js'),
      import('../ui/prompt.js'),
      import('../context.js'),
      import('../ui/errors.js'),
      import('../inventory/cache.js'),
    ]);
    const out = createOutput({ format: opts.output, color: opts.color && !(env.NO_COLOR ?? '').length, verbose: opts.verbose });
    const ctx = createContext({
      opts,
      out,
      prompt: createPrompter({ yes: opts.yes, isTTY }),
      env,
      argv: ['enssib', ...argv],
      signal: abort.signal,
      inventory: await inventoryLoader(opts.inventory, env, process.cwd()),
    });
    process.on('SIGINT', onSigint);
    try {
      const handler = await spec.handler();
      code = await handler(ctx, inv);
    } catch (e) {
      code = printError(out, e);
    } finally {
      process.off('SIGINT', onSigint);
    }
  }, io);
  try {
    await program.parseAsync(expandDryRun(argv), { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return ExitCode.ok;
      return ExitCode.usage;
    }
    if (e instanceof UsageError) {
      (io.stderr ?? process.stderr).write(`error: ${e.message}\n`);
      return ExitCode.usage;
    }
    throw e;
  }
  return code;
}
