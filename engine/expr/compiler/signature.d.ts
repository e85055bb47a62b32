/** Types of signature.js (a port of jsonata 2.2's signature.js): its members are jsonata's, untyped. */
declare const signature: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export default signature;
