/**
 * The numeric settings of the environment: each is a whole number above zero (a count, bytes,
 * milliseconds or megabytes), and each has a default that an unset or empty variable keeps.
 * `synapse run` refuses to start when one of them is set to anything else (`settingErrors`): a
 * limit typed as `10s` or `-1` must not silently become the default, or, worse, zero.
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

/** The value of a numeric setting: unset or empty keeps `fallback`, and so does an invalid value (see settingErrors). */
export function numericSetting(name: NumericSetting, fallback: number, env: NodeJS.ProcessEnv = process.env): number {
  const value = parse(env[name]);
  return value ?? fallback;
}

/** One line per numeric setting set to something that is not a whole number above zero. */
export function settingErrors(env: NodeJS.ProcessEnv = process.env): string[] {
  return NUMERIC_SETTINGS.filter((name) => env[name]?.trim() && parse(env[name]) === undefined)
    .map((name) => `${name} must be a whole number above 0, got '${String(env[name]).slice(0, 40)}'`);
}

/** A set value that is a whole number above zero; undefined for anything else. */
function parse(raw: string | undefined): number | undefined {
  if (!raw?.trim()) return undefined;
  const value = Number(raw);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}
