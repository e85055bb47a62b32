/** Types of utils.js (a port of jsonata 2.2's utils.js): its members are jsonata's, untyped. */
declare const utils: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export default utils;
