import { isUtf8 } from 'node:buffer';
import type { RedisConnection } from './redis-client.ts';
import type { StreamEntry } from '../runner/codec.ts';

type RawEntry = [id: Buffer | string, fields: Buffer[] | null];

/** ioredis has a `<command>Buffer` form of every command; its types leave these two out. */
interface BufferCommands {
  xreadgroupBuffer(...args: (string | number)[]): Promise<unknown>;
  xautoclaimBuffer(...args: (string | number)[]): Promise<unknown>;
}

/**
 * The Redis side of reading one stream through a consumer group: creating the group, reading new
 * and own-pending entries, reclaiming idle entries of dead consumers, and learning delivery counts.
 * Holds no loop and no policy; StreamConsumer drives it.
 */
export class StreamReader {
  constructor(
    /** A connection of its own: XREADGROUP BLOCK holds it. */
    private readonly blocking: RedisConnection,
    /** The shared connection for everything that does not block. */
    private readonly redis: RedisConnection,
    readonly stream: string,
    readonly group: string,
    readonly consumer: string,
  ) {}

  /** Creates the group (and the stream) at `start` unless it exists. */
  async ensureGroup(start: string): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.stream, this.group, start, 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
  }

  /**
   * Reads up to `count` entries: after `cursor` among this consumer's own pending entries when
   * cursor is an id (`0` to start), or new entries (`>`), waiting up to `blockMs` for them.
   * Entries deleted from the stream while pending come back in `deleted`.
   */
  async read(cursor: string, count: number, blockMs: number): Promise<{ entries: StreamEntry[]; deleted: string[] }> {
    const args: (string | number)[] = ['GROUP', this.group, this.consumer, 'COUNT', count];
    if (cursor === '>') args.push('BLOCK', blockMs);
    args.push('STREAMS', this.stream, cursor);
    // Read as bytes: a value that is not UTF-8 must reach the decoder (and the DLQ) as it is.
    const reply = (await (this.blocking as unknown as BufferCommands).xreadgroupBuffer(...args)) as [Buffer, RawEntry[]][] | null;
    return split(reply?.[0]?.[1] ?? []);
  }

  /**
   * Claims up to `count` entries other consumers left pending longer than `minIdleMs`, from
   * `cursor` (`0-0` to start). Returns the entries, the next cursor (`0-0` when done) and ids the
   * stream no longer has (XAUTOCLAIM already dropped those from the pending list).
   */
  async claim(cursor: string, minIdleMs: number, count: number): Promise<{ next: string; entries: StreamEntry[]; deleted: string[] }> {
    const reply = (await (this.redis as unknown as BufferCommands).xautoclaimBuffer(this.stream, this.group, this.consumer, minIdleMs, cursor, 'COUNT', count)) as [Buffer, RawEntry[], Buffer[]?];
    const { entries } = split(reply[1] ?? []);
    return { next: reply[0].toString(), entries, deleted: (reply[2] ?? []).map(String) };
  }

  /**
   * Fills in `deliveries` of entries this consumer holds, from the group's pending list: one
   * XPENDING per entry (pipelined into one round trip), so other pending entries between them
   * cannot shift the counts. Used only for re-read and reclaimed entries, never on the hot path.
   */
  async withDeliveryCounts(entries: StreamEntry[]): Promise<StreamEntry[]> {
    return Promise.all(entries.map(async (e) => {
      const rows = (await this.redis.xpending(this.stream, this.group, e.id, e.id, 1)) as [string, string, number, number][];
      return { ...e, deliveries: rows[0] ? Number(rows[0][3]) : 1 };
    }));
  }

  /** Removes consumers of the group that have nothing pending and have been idle longer than `idleMs`. */
  async removeIdleConsumers(idleMs: number): Promise<string[]> {
    const rows = (await this.redis.xinfo('CONSUMERS', this.stream, this.group)) as unknown[][];
    const removed: string[] = [];
    for (const row of rows) {
      const info = toRecord(row);
      const idle = Number(info['inactive'] ?? info['idle']);
      if (info['name'] !== this.consumer && Number(info['pending']) === 0 && idle > idleMs) {
        await this.redis.xgroup('DELCONSUMER', this.stream, this.group, String(info['name']));
        removed.push(String(info['name']));
      }
    }
    return removed;
  }

  /** The group's lag (entries not yet delivered) and pending count, from XINFO GROUPS. */
  async groupInfo(): Promise<{ lag: number | null; pending: number } | undefined> {
    const rows = (await this.redis.xinfo('GROUPS', this.stream)) as unknown[][];
    for (const row of rows) {
      const info = toRecord(row);
      if (info['name'] === this.group) {
        return { lag: info['lag'] === null || info['lag'] === undefined ? null : Number(info['lag']), pending: Number(info['pending']) };
      }
    }
    return undefined;
  }
}

function split(raw: RawEntry[]): { entries: StreamEntry[]; deleted: string[] } {
  const entries: StreamEntry[] = [];
  const deleted: string[] = [];
  for (const [id, fields] of raw) {
    if (fields) entries.push(entryFromBytes(String(id), fields));
    else deleted.push(String(id));
  }
  return { entries, deleted };
}

/**
 * A stream entry from the bytes Redis returned: field values as strings, and the original bytes
 * of any value that is not valid UTF-8 in `binary` (its string a lossy decoding).
 */
export function entryFromBytes(id: string, raw: readonly Buffer[]): StreamEntry {
  const fields = new Array<string>(raw.length);
  let binary: Map<number, Buffer> | undefined;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    fields[i] = b.toString();
    if (i % 2 === 1 && !isUtf8(b)) (binary ??= new Map()).set(i, b);
  }
  return binary ? { id, fields, binary } : { id, fields };
}

/** XINFO replies are flat [name, value, ...] lists. */
export function toRecord(row: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < row.length; i += 2) out[String(row[i])] = row[i + 1];
  return out;
}
