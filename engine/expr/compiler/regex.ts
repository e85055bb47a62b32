/**
 * The one place where an expression's regular expressions are built (regex literals, and the
 * patterns `$match`, `$replace`, `$contains` and `$split` receive as regex arguments; date/time
 * picture parsers too).
 *
 * Event data must not be able to make a regex backtrack exponentially (`$match(s, /(a+)+$/)` on
 * `"aaaa…!"`). V8 has a linear-time (automaton) regex engine; with
 * `--enable-experimental-regexp-engine-on-excessive-backtracks` a regex that backtracks more than
 * `--regexp-backtracks-before-fallback` times (V8's default, 50,000) is re-run on it. The flag is
 * process-wide and is set here, when this module loads, before any expression's regex is built.
 * Patterns the linear engine cannot run (backreferences, lookaround) keep V8's backtracking engine.
 */
import v8 from 'node:v8';

v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');

/** Builds a RegExp for an expression; every regex of compiled code is made here. */
export function compileRegex(pattern: string, flags = ''): RegExp {
  return new RegExp(pattern, flags);
}
