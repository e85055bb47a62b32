/**
 * The settings of the environment that every `synapse` command checks before it starts (`settingErrors`):
 * a limit typed as `10s` or `-1` must not silently become its default (or, worse, zero), nor a
 * log level pino does not know fail with a stack trace.
 *
 * The numeric ones: each is a whole number from 1 to MAX_SETTING (a count, bytes, milliseconds
 * or megabytes), written in digits, and each has a default that an unset or empty variable keeps.
 */
export const NUMERIC_SETTINGS = [
  'SYNAPSE_SHUTDOWN_TIMEOUT_MS',
  'SYNAPSE_DLQ_MAX_PAYLOAD_BYTES',
  'SYNAPSE_DLQ_MAXLEN',
  'SYNAPSE_DLQ_LIST_MAX_BYTES',
  'SYNAPSE_DLQ_LOG_INTERVAL_MS',
  'SYNAPSE_CONFIG_MAX_DEPTH',
  'SYNAPSE_WS_MAX_CONNECTIONS',
  'SYNAPSE_WS_MAX_CONNECTIONS_PER_IP',
  'SYNAPSE_WS_MAX_SUBSCRIPTIONS',
  'SYNAPSE_WS_MAX_CHANNEL_LENGTH',
  'SYNAPSE_WS_MAX_BUFFERED_BYTES',
  'SYNAPSE_SANDBOX_MEMORY_MB',
  'SYNAPSE_SANDBOX_TIMEOUT_MS',
  'SYNAPSE_SANDBOX_MAX_BYTES',
] as const;

export type NumericSetting = (typeof NUMERIC_SETTINGS)[number];

/**
 * The largest value of a numeric setting: Node's timers take at most 2^31-1 ms and turn anything
 * larger into 1 ms (a shutdown time limit of 2147483648 would force every stop at once).
 */
export const MAX_SETTING = 2_147_483_647;

/** Settings that take one of a few words (in any case, spaces around it dropped; unset or empty: the default). */
export const CHOICE_SETTINGS = {
  SYNAPSE_LOG_LEVEL: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
  SYNAPSE_LOG_FORMAT: ['json', 'pretty'],
  SYNAPSE_REDIS_CLUSTER: ['yes', 'no', 'auto', 'true', 'false', '1', '0'],
} as const;

/** The word a choice setting is set to, in lower case, spaces around it dropped; undefined when unset or empty (the default). */
export function choiceSetting(name: keyof typeof CHOICE_SETTINGS, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env[name]?.trim().toLowerCase() || undefined;
}

/** The value of a numeric setting: unset or empty keeps `fallback`, and so does an invalid value (see settingErrors). */
export function numericSetting(name: NumericSetting, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const value = parse(env[name]);
  return value ?? fallback;
}

/** One line per setting set to a value it cannot take. */
export function settingErrors(env: NodeJS.ProcessEnv = process.env): string[] {
  const shown = (name: string) => String(env[name]).slice(0, 40);
  const numbers = NUMERIC_SETTINGS.filter((name) => env[name]?.trim() && parse(env[name]) === undefined)
    .map((name) => `${name} must be a whole number from 1 to ${MAX_SETTING}, got '${shown(name)}'`);
  const words = (Object.entries(CHOICE_SETTINGS) as [keyof typeof CHOICE_SETTINGS, readonly string[]][])
    .filter(([name, choices]) => { const word = choiceSetting(name, env); return word !== undefined && !choices.includes(word); })
    .map(([name, choices]) => `${name} must be one of ${choices.join(', ')}, got '${shown(name)}'`);
  return [...numbers, ...words];
}

/** A set value that is a whole number from 1 to MAX_SETTING in digits (not `1e3`, `0x10`, `+7`); undefined for anything else. */
function parse(raw: string | undefined): number | undefined {
  const text = raw?.trim() ?? '';
  if (!/^[0-9]+$/.test(text)) return undefined;
  const value = Number(text);
  return value >= 1 && value <= MAX_SETTING ? value : undefined;
}
