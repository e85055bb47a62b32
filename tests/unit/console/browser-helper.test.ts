import { describe, expect, it } from 'vitest';
import { browserUnavailable } from '../../helpers/browser.ts';

// The console's browser tests skip without chromium, and fail instead under CI (SYNAPSE_CI=1).
describe('browserUnavailable', () => {
  it('gives the reason to skip when chromium is missing', () => {
    expect(browserUnavailable('/nonexistent/chromium', {})).toMatch(/^no chromium at \/nonexistent\/chromium/);
  });

  it('throws under SYNAPSE_CI=1 when chromium is missing: absence is a failure there', () => {
    expect(() => browserUnavailable('/nonexistent/chromium', { SYNAPSE_CI: '1' })).toThrow(/SYNAPSE_CI=1/);
  });

  it('is undefined when the binary is there', () => {
    expect(browserUnavailable(process.execPath, { SYNAPSE_CI: '1' })).toBeUndefined();
  });
});
