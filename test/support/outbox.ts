import type { Redis } from 'ioredis';
import { startServers, type TestServers } from './pipeline';

export const STREAM = 'redis-es-sync:outbox';
export const GROUP = 'redis-es-sync';

/** An application's write: the value and its outbox entry in one MULTI; returns the entry's id. */
export async function writeWithEntry(redis: Redis, key: string, value = `value of ${key}`): Promise<string> {
  const [, [, id]] = (await redis.multi().set(key, value).xadd(STREAM, '*', 'key', key).exec()) as [
    unknown,
    [unknown, string],
  ];
  return id;
}

/**
 * Source and queue Redis WITHOUT keyspace notifications: in outbox mode the stream is the
 * only way a change reaches the queue, so a test passing here proves the outbox carried it.
 */
export function startOutboxServers(indexPrefix: string): Promise<TestServers> {
  return startServers(indexPrefix, { notify: false });
}

/** Unacknowledged entries of the group, or of one consumer. */
export async function pendingCount(redis: Redis, consumer?: string): Promise<number> {
  const [count, , , consumers] = (await redis.xpending(STREAM, GROUP)) as [
    number,
    string | null,
    string | null,
    [string, string][] | null,
  ];
  if (consumer === undefined) return count;
  return Number((consumers ?? []).find(([name]) => name === consumer)?.[1] ?? 0);
}

/** True when the group was given every entry in the stream and all but `held` (another consumer's) are acknowledged. */
export async function outboxDrained(redis: Redis, held = 0): Promise<boolean> {
  const groups = (await redis.xinfo('GROUPS', STREAM)) as unknown[][];
  const group = groups.map((g) => Object.fromEntries(chunk(g))).find((g) => g.name === GROUP);
  if (!group) return false;
  const lastId = Object.fromEntries(chunk((await redis.xinfo('STREAM', STREAM)) as unknown[]))['last-generated-id'];
  return Number(group.pending) === held && group['last-delivered-id'] === lastId;
}

function chunk(flat: unknown[]): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([String(flat[i]), flat[i + 1]]);
  return out;
}
