import { describe, expect, it } from 'vitest';
import { CHOICE_SETTINGS, NUMERIC_SETTINGS, choiceSetting, numericSetting, settingErrors } from '../../engine/settings.ts';

describe('numeric settings of the environment', () => {
  it('an unset or empty setting keeps its default; a whole number above zero is taken', () => {
    expect(numericSetting('SYNAPSE_DLQ_MAXLEN', 7, {})).toBe(7);
    expect(numericSetting('SYNAPSE_DLQ_MAXLEN', 7, { SYNAPSE_DLQ_MAXLEN: '' })).toBe(7);
    expect(numericSetting('SYNAPSE_DLQ_MAXLEN', 7, { SYNAPSE_DLQ_MAXLEN: '  ' })).toBe(7);
    expect(numericSetting('SYNAPSE_DLQ_MAXLEN', 7, { SYNAPSE_DLQ_MAXLEN: '1' })).toBe(1);
    expect(numericSetting('SYNAPSE_DLQ_MAXLEN', 7, { SYNAPSE_DLQ_MAXLEN: '250000' })).toBe(250_000);
    expect(settingErrors({ SYNAPSE_DLQ_MAXLEN: '1', SYNAPSE_SHUTDOWN_TIMEOUT_MS: '', SYNAPSE_WS_MAX_CONNECTIONS: '5' })).toEqual([]);
  });

  it.each(['0', '-1', '10s', '1.5', '1.0', 'abc', 'NaN', 'Infinity', '1e3', '0x10', '0b11', '+7', '2147483648', '9007199254740993'])('%s is refused, named with its value, and never read as a number', (raw) => {
    expect(numericSetting('SYNAPSE_SHUTDOWN_TIMEOUT_MS', 10_000, { SYNAPSE_SHUTDOWN_TIMEOUT_MS: raw })).toBe(10_000);
    expect(settingErrors({ SYNAPSE_SHUTDOWN_TIMEOUT_MS: raw })).toEqual([`SYNAPSE_SHUTDOWN_TIMEOUT_MS must be a whole number from 1 to 2147483647, got '${raw}'`]);
  });

  it('the largest value Node\'s timers take is the largest a setting takes', () => {
    expect(numericSetting('SYNAPSE_SHUTDOWN_TIMEOUT_MS', 10_000, { SYNAPSE_SHUTDOWN_TIMEOUT_MS: '2147483647' })).toBe(2_147_483_647);
    expect(numericSetting('SYNAPSE_DLQ_MAXLEN', 7, { SYNAPSE_DLQ_MAXLEN: ' 010 ' })).toBe(10);
  });

  it('every bad setting is named, in the order of the list; a long value is cut', () => {
    const env = Object.fromEntries(NUMERIC_SETTINGS.map((name) => [name, '-1']));
    expect(settingErrors(env).map((line) => line.split(' ')[0])).toEqual([...NUMERIC_SETTINGS]);
    expect(settingErrors({ SYNAPSE_SANDBOX_MAX_BYTES: 'x'.repeat(10_000) })[0]).toBe(`SYNAPSE_SANDBOX_MAX_BYTES must be a whole number from 1 to 2147483647, got '${'x'.repeat(40)}'`);
  });

  it('a setting that takes one of a few words: any other is refused, naming the words; case and spaces around it do not matter', () => {
    expect(settingErrors({ SYNAPSE_LOG_LEVEL: 'verbose', SYNAPSE_LOG_FORMAT: 'xml', SYNAPSE_REDIS_CLUSTER: 'ye' })).toEqual([
      "SYNAPSE_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got 'verbose'",
      "SYNAPSE_LOG_FORMAT must be one of json, pretty, got 'xml'",
      "SYNAPSE_REDIS_CLUSTER must be one of yes, no, auto, true, false, 1, 0, got 'ye'",
    ]);
    expect(settingErrors({ SYNAPSE_LOG_LEVEL: 'Debug', SYNAPSE_LOG_FORMAT: 'JSON', SYNAPSE_REDIS_CLUSTER: 'Yes' })).toEqual([]);
    // As the logger and the cluster switch read them: spaces around the word dropped.
    expect(settingErrors({ SYNAPSE_REDIS_CLUSTER: ' yes ', SYNAPSE_LOG_LEVEL: ' debug ' })).toEqual([]);
    expect(choiceSetting('SYNAPSE_LOG_LEVEL', { SYNAPSE_LOG_LEVEL: ' Debug ' })).toBe('debug');
    expect(choiceSetting('SYNAPSE_LOG_LEVEL', { SYNAPSE_LOG_LEVEL: '  ' })).toBeUndefined();
    expect(settingErrors({ SYNAPSE_LOG_LEVEL: '', SYNAPSE_LOG_FORMAT: '', SYNAPSE_REDIS_CLUSTER: '' })).toEqual([]);
    expect(Object.keys(CHOICE_SETTINGS)).toEqual(['SYNAPSE_LOG_LEVEL', 'SYNAPSE_LOG_FORMAT', 'SYNAPSE_REDIS_CLUSTER']);
  });
});
