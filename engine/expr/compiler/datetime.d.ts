/** Types of datetime.js (a port of jsonata 2.2's datetime.js): its members are jsonata's, untyped. */
declare const datetime: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export default datetime;
