import { writeFileSync } from 'node:fs';
import { buildProgram } from './main.js';

/**
 * The top-level help, written by the build to dist/cli/help.json so that
 * `enssib --help` prints it without loading the CLI (bin/enssib.js). `anyWidth`:
 * nothing wraps at 80 columns, so the text is the same on any wider terminal.
 */
export interface HelpCache {
  text: string;
  anyWidth: boolean;
}

/** The help `enssib --help` prints on a terminal this wide (commander wraps descriptions to it). */
export function topLevelHelp(width: number): string {
  let text = '';
  const program = buildProgram(async () => undefined, {
    stdout: {
      write: (s: string) => {
        text += s;
        return true;
      },
    } as NodeJS.WritableStream,
  });
  program.configureOutput({ getOutHelpWidth: () => width, getOutHasColors: () => false });
  program.outputHelp();
  return text;
}

export function helpCache(): HelpCache {
  const text = topLevelHelp(80);
  return { text, anyWidth: topLevelHelp(1000) === text };
}

/** Run by `npm run build` (package.json): writes dist/cli/help.json. */
export function writeHelpCache(file: string): void {
  writeFileSync(file, `${JSON.stringify(helpCache())}\n`);
}
