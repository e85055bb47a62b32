/** Types of evaluator.js (a synchronous port of jsonata 2.2's evaluator). */

/** An AST prepared for synchronous evaluation (see compile.ts). */
export interface Prepared {
  evaluate(input: unknown, bindings?: Record<string, unknown>): unknown;
  ast(): unknown;
}

/** Prepares an AST with limits `{ timeout, stack, sequence }`. */
export declare const prepare: (ast: unknown, options?: { timeout?: number; stack?: number; sequence?: number }) => Prepared;

/** The evaluator's inner functions that compiled closures (closures.ts) are made of; jsonata's signatures. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export declare const internals: Record<string, any>;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const jsonata: Record<string, any>;
export default jsonata;
