/**
 * Just enough of the Dockerfile syntax to find the images a build starts from
 * (`FROM` and `COPY --from=`), so that their IDs in the engine can enter the
 * content tag. The engine itself parses the Dockerfile for the build.
 */
export interface Instruction {
  line: number;
  keyword: string;
  args: string;
}

export function instructions(text: string): Instruction[] {
  const lines = text.split(/\r?\n/);
  let escape = '\\';
  // Parser directives: only at the very top, before any instruction or other comment.
  for (const l of lines) {
    const m = /^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(l);
    if (!m) break;
    if (m[1]?.toLowerCase() === 'escape' && (m[2] === '`' || m[2] === '\\')) escape = m[2];
  }
  const out: Instruction[] = [];
  let current = '';
  let start = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    const trimmed = raw.trim();
    if (current === '' && (trimmed === '' || trimmed.startsWith('#'))) continue;
    if (current !== '' && trimmed.startsWith('#')) continue; // comment inside a continuation
    if (current === '') start = i + 1;
    const continued = trimmed.endsWith(escape);
    current += `${continued ? trimmed.slice(0, -1) : trimmed} `;
    if (continued && i < lines.length - 1) continue;
    const m = /^(\S+)\s*(.*)$/.exec(current.trim());
    if (m) out.push({ line: start, keyword: (m[1] ?? '').toUpperCase(), args: (m[2] ?? '').trim() });
    current = '';
  }
  return out;
}

/** `${VAR}`, `$VAR`, `${VAR:-default}`, `${VAR:+alt}` as the Dockerfile expands them in FROM. */
export function expand(s: string, vars: Record<string, string | undefined>): string {
  return s.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_m, braced, op, word, bare) => {
    const name = (braced ?? bare) as string;
    const v = vars[name];
    if (op === '-') return v === undefined || v === '' ? (word as string) : v;
    if (op === '+') return v === undefined || v === '' ? '' : (word as string);
    return v ?? '';
  });
}

/**
 * The images a build starts from, in order, without `scratch` and without the
 * Dockerfile's own stages. ARGs declared before the first FROM are expanded
 * with their defaults, overridden by the build args.
 */
export function baseImages(text: string, buildArgs: Record<string, string> = {}): string[] {
  const vars: Record<string, string | undefined> = {};
  const stages = new Set<string>();
  const bases: string[] = [];
  const add = (ref: string) => {
    if (ref === '' || ref.toLowerCase() === 'scratch' || stages.has(ref.toLowerCase()) || /^\d+$/.test(ref)) return;
    if (!bases.includes(ref)) bases.push(ref);
  };
  let seenFrom = false;
  for (const ins of instructions(text)) {
    if (ins.keyword === 'ARG' && !seenFrom) {
      for (const decl of ins.args.split(/\s+/)) {
        const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(decl);
        if (!m) continue;
        const name = m[1] as string;
        const def = m[2] === undefined ? undefined : unquote(m[2]);
        vars[name] = buildArgs[name] ?? def;
      }
    } else if (ins.keyword === 'FROM') {
      seenFrom = true;
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      const ref = expand(words[0] ?? '', vars);
      add(ref);
      if ((words[1] ?? '').toUpperCase() === 'AS' && words[2]) stages.add(words[2].toLowerCase());
    } else if (ins.keyword === 'COPY' || ins.keyword === 'ADD') {
      const m = /(?:^|\s)--from=(\S+)/.exec(ins.args);
      if (m?.[1]) add(m[1]);
    }
  }
  return bases;
}

function unquote(s: string): string {
  return /^(["']).*\1$/.test(s) ? s.slice(1, -1) : s;
}

/** The instruction at a "Step N/M" of the classic builder, for error messages: from the Dockerfile text. */
export function instructionLine(text: string, keywordAndArgs: string): number | undefined {
  const want = keywordAndArgs.replace(/\s+/g, ' ').trim().toLowerCase();
  for (const ins of instructions(text)) {
    if (`${ins.keyword} ${ins.args}`.replace(/\s+/g, ' ').trim().toLowerCase() === want) return ins.line;
  }
  return undefined;
}
