/** Types of functions.js (a port of jsonata 2.2's functions.js): its members are jsonata's, untyped. */
declare const functions: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export default functions;
