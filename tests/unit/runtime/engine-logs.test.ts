import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { CompiledPipeline } from '../../../engine/config/load-pipeline.ts';
import { logWarnings, redactUrl } from '../../../engine/runtime/engine.ts';

describe('redactUrl (the Redis URL as the engine logs it)', () => {
  it('hides the password, keeps the user, host, port and database', () => {
    expect(redactUrl('redis://app:s3cret@redis.internal:6380/2')).toBe('redis://app:***@redis.internal:6380/2');
    expect(redactUrl('rediss://:s3cret@redis.internal')).toBe('rediss://:***@redis.internal');
    expect(redactUrl('redis://default:p%40ss:word@10.0.0.1:6379')).toBe('redis://default:***@10.0.0.1:6379');
    expect(redactUrl('redis://app:s3cret@[::1]:6379')).toBe('redis://app:***@[::1]:6379');
  });

  it('hides all of a password holding a bare @ (the last @ ends it, for ioredis as for any URL parser), and one behind a user holding @', () => {
    const url = 'redis://app:p@ss@redis.internal:6379/0';
    expect(new URL(url).password).toBe('p%40ss');
    expect(redactUrl(url)).toBe('redis://app:***@redis.internal:6379/0');
    expect(redactUrl('redis://us@er:pw@host')).toBe('redis://us%40er:***@host');
  });

  it('hides a password given without a scheme, or as a query option (ioredis reads both)', () => {
    expect(redactUrl('user:s3cret@host:6379')).toBe('user:***@host:6379');
    // A scheme is only where the URL starts: a `x://` later in it does not make it one.
    expect(redactUrl('user:s3cret@host:6379/0?next=a://b')).toBe('user:***@host:6379/0?next=a://b');
    expect(redactUrl(':s3cret@host:6379')).toBe(':***@host:6379');
    expect(redactUrl('//:s3cret@host:6379')).toBe('//:***@host:6379');
    expect(redactUrl('redis://host:6379/0?password=s3cret')).toBe('redis://host:6379/0?password=***');
    expect(redactUrl('redis://host:6379/0?username=u&password=s3cret&db=1')).toBe('redis://host:6379/0?username=u&password=***&db=1');
    expect(redactUrl('/tmp/redis.sock?password=s3cret')).toBe('/tmp/redis.sock?password=***');
    expect(redactUrl('redis://host:6379/?x=//u:a@b&password=s3cret')).not.toContain('s3cret');
  });

  it('leaves a URL without a secret as it is; one that does not parse is not shown', () => {
    for (const url of ['redis://127.0.0.1:6379', 'redis://app@host:6379', 'redis://us@er@host:6379', 'redis://host/0?x=a:b@c', 'host:6379', '/tmp/redis.sock']) {
      expect(redactUrl(url)).toBe(url);
    }
    expect(redactUrl('redis://:s3cret@host:port')).toBe('<a URL that does not parse>');
  });
});

describe('logWarnings', () => {
  it('logs each warning of a pipeline at warn, naming the pipeline, its file and FILE:LINE:COL', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const pipeline = {
      name: 'orders',
      file: '/srv/pipelines/orders.yaml',
      warnings: [
        { file: '/srv/pipelines/orders.yaml', line: 7, col: 12, message: 'first' },
        { file: '/srv/pipelines/orders.yaml', line: 9, col: 3, message: 'second' },
      ],
    } as unknown as CompiledPipeline;
    logWarnings(logger, pipeline);
    expect(lines.map(({ level, pipeline: p, file, msg }) => ({ level, p, file, msg }))).toEqual([
      { level: 40, p: 'orders', file: '/srv/pipelines/orders.yaml', msg: 'pipeline loads with a warning: /srv/pipelines/orders.yaml:7:12 first' },
      { level: 40, p: 'orders', file: '/srv/pipelines/orders.yaml', msg: 'pipeline loads with a warning: /srv/pipelines/orders.yaml:9:3 second' },
    ]);
  });
});
