import { RE2JS } from 're2js';
import type { RegExpEngine, RegExpLike } from 'ajv/dist/types';

/**
 * Ajv's engine for `pattern` and `patternProperties`: RE2's, which matches in time linear in
 * the input whatever the pattern, so a hostile pattern in an announced schema cannot stall the
 * manager on a create's params. It has no lookaround and no backreferences; a schema that uses
 * them is refused when it is compiled (the error names the pattern).
 */
export const safeRegExp: RegExpEngine = Object.assign(
  (pattern: string, _flags: string): RegExpLike => {
    let compiled: RE2JS;
    try {
      compiled = RE2JS.compile(RE2JS.translateRegExp(pattern));
    } catch (err) {
      throw new Error(`pattern ${JSON.stringify(pattern)} is not supported: ${(err as Error).message}`);
    }
    // Ajv keys the patterns of a schema by their text.
    const like = { test: (text: string) => compiled.test(text), toString: () => `/${pattern}/` };
    return like;
  },
  { code: 'safeRegExp' },
);
