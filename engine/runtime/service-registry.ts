import { scanKeys, type RedisConnection } from './redis-client.ts';

/** Key prefix of service records; each record expires unless its service sends a heartbeat. */
export const SERVICE_KEY_PREFIX = 'synapse:service:';

/** A registered service. */
export interface ServiceRecord {
  name: string;
  url?: string;
  capabilities: string[];
  metadata?: Record<string, unknown>;
  ttlSeconds: number;
  registeredAt: string;
  lastHeartbeat: string;
}

/**
 * The service registry (SPEC §8): services POST themselves with their capabilities and repeat it
 * as a heartbeat before `ttlSeconds` runs out; a service that stops beating disappears. Records
 * live in Redis (one key each, with a TTL), so every replica sees the same registry.
 */
export class ServiceRegistry {
  constructor(private readonly redis: () => RedisConnection) {}

  /** Registers or refreshes a service. */
  async heartbeat(s: { name: string; url?: string; capabilities?: string[]; metadata?: Record<string, unknown>; ttlSeconds?: number }): Promise<ServiceRecord> {
    const key = SERVICE_KEY_PREFIX + s.name;
    const now = new Date().toISOString();
    const previous = await this.redis().get(key);
    const record: ServiceRecord = {
      name: s.name,
      url: s.url,
      capabilities: [...new Set(s.capabilities ?? [])].sort(),
      metadata: s.metadata,
      ttlSeconds: s.ttlSeconds ?? 30,
      registeredAt: parseRecord(previous)?.registeredAt ?? now,
      lastHeartbeat: now,
    };
    await this.redis().set(key, JSON.stringify(record), 'EX', record.ttlSeconds);
    return record;
  }

  /** Live services, optionally only those with a capability. */
  async list(capability?: string): Promise<ServiceRecord[]> {
    const redis = this.redis();
    const keys = await scanKeys(redis, `${SERVICE_KEY_PREFIX}*`);
    if (keys.length === 0) return [];
    // One GET per key (auto-pipelined): on a cluster the keys live in different slots.
    const values = await Promise.all(keys.map((k) => redis.get(k)));
    return values
      .map(parseRecord)
      .filter((r): r is ServiceRecord => r !== undefined && (!capability || r.capabilities.includes(capability)))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Removes a service at once (a clean shutdown). */
  async remove(name: string): Promise<boolean> {
    return (await this.redis().del(SERVICE_KEY_PREFIX + name)) > 0;
  }
}

/**
 * A stored record, or undefined when the key holds something else (written by hand, or by another
 * tool): such a key is skipped, not a 500 for every caller.
 */
function parseRecord(value: string | null): ServiceRecord | undefined {
  if (value === null) return undefined;
  try {
    const r = JSON.parse(value) as Partial<ServiceRecord> | null;
    return r && typeof r === 'object' && typeof r.name === 'string' && Array.isArray(r.capabilities) ? (r as ServiceRecord) : undefined;
  } catch {
    return undefined;
  }
}
