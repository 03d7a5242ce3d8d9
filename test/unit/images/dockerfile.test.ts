import { describe, expect, it } from 'vitest';
import { baseImages, expand, instructionLine, instructions } from '../../../src/images/dockerfile.js';

describe('Dockerfile: base images', () => {
  it('FROM scratch has none', () => {
    expect(baseImages('FROM scratch\nCOPY a /a\n')).toEqual([]);
  });

  it('FROM with --platform, AS, and later stages referring to earlier ones', () => {
    const df = 'FROM --platform=linux/amd64 golang:1.22 AS build\nRUN go build\nFROM debian:12-slim\nCOPY --from=build /out /out\nFROM build AS test\n';
    expect(baseImages(df)).toEqual(['golang:1.22', 'debian:12-slim']);
  });

  it('COPY --from an image (not a stage) is a base too; a stage index is not', () => {
    expect(baseImages('FROM scratch\nCOPY --from=nginx:1.25 /etc/nginx /etc/nginx\nCOPY --from=0 /a /a\n')).toEqual(['nginx:1.25']);
  });

  it('ARGs before the first FROM, with defaults overridden by build args', () => {
    const df = 'ARG REG=registry.cluster.enssib.fr:5000\nARG VERSION="12"\nFROM ${REG}/debian:${VERSION}\nFROM $REG/tools:${TOOLS:-latest}\n';
    expect(baseImages(df)).toEqual(['registry.cluster.enssib.fr:5000/debian:12', 'registry.cluster.enssib.fr:5000/tools:latest']);
    expect(baseImages(df, { VERSION: '13' })[0]).toBe('registry.cluster.enssib.fr:5000/debian:13');
  });

  it('line continuations, comments and lowercase keywords', () => {
    const df = '# syntax comment\nfrom \\\n  alpine:3.19 \\\n  as base\n# between\nRUN echo a \\\n# inside\n  && echo b\n';
    expect(baseImages(df)).toEqual(['alpine:3.19']);
    const ins = instructions(df);
    expect(ins.map((i) => [i.line, i.keyword])).toEqual([
      [2, 'FROM'],
      [6, 'RUN'],
    ]);
    expect(ins[1]?.args.replace(/\s+/g, ' ')).toBe('echo a && echo b');
  });

  it('the escape directive', () => {
    expect(baseImages('# escape=`\nFROM `\n  busybox\n')).toEqual(['busybox']);
  });

  it('expand', () => {
    expect(expand('${A}-$B-${C:-c}-${A:+set}-${D:+no}', { A: 'a', B: 'b' })).toBe('a-b-c-set-');
  });

  it('finds the line of an instruction named by the builder', () => {
    const df = 'FROM scratch\n\nCOPY a /a\nRUN   exit 1\n';
    expect(instructionLine(df, 'RUN exit 1')).toBe(4);
    expect(instructionLine(df, 'COPY a /a')).toBe(3);
    expect(instructionLine(df, 'RUN nothing')).toBeUndefined();
  });
});
