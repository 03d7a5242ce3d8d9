import { InterruptedError, UsageError } from '../errors.js';

/**
 * Questions to the user. They are asked only when stdin is a terminal and
 * --yes is absent; otherwise a missing answer is a usage error naming the flag.
 */
export interface Prompter {
  readonly interactive: boolean;
  /** Ask for confirmation of a destructive step; --yes answers yes. */
  confirm(message: string, flag?: string): Promise<void>;
  /** Ask for a missing value; `flag` names how to pass it without a terminal. */
  input(message: string, flag: string, validate?: (v: string) => string | true): Promise<string>;
  select<T extends string>(message: string, choices: { value: T; name: string; description?: string }[]): Promise<T>;
}

export function createPrompter(opts: { yes: boolean; isTTY: boolean }): Prompter {
  const interactive = opts.isTTY && !opts.yes;
  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof Error && e.name === 'ExitPromptError') throw new InterruptedError('cancelled at the prompt');
      throw e;
    }
  };
  return {
    interactive,
    async confirm(message, flag = '--yes') {
      if (opts.yes) return;
      if (!interactive) throw new UsageError(`${message} — this needs confirmation: run it again with ${flag}`);
      const { confirm } = await import('@inquirer/prompts');
      const ok = await guard(() => confirm({ message, default: false }));
      if (!ok) throw new InterruptedError('not confirmed: nothing was done');
    },
    async input(message, flag, validate) {
      if (!interactive) throw new UsageError(`missing ${flag}`, [`${message} Pass it as ${flag}.`]);
      const { input } = await import('@inquirer/prompts');
      return guard(() => input({ message, ...(validate ? { validate } : {}) }));
    },
    async select(message, choices) {
      if (!interactive) throw new UsageError(`${message}: no terminal to ask on`);
      const { select } = await import('@inquirer/prompts');
      return guard(() => select({ message, choices, pageSize: 20 }));
    },
  };
}
