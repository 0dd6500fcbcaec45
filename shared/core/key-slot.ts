// ioredis's own implementation of the Redis Cluster key slot (CRC16 of the hash tag, mod 16384).
import calculateSlot from 'ioredis/built/utils/calculateSlot';
import { keyToBytes } from './bytes';

/** The Cluster hash slot of a key, from its exact bytes (a binary key's included), as CLUSTER KEYSLOT answers. */
export function keySlot(key: string): number {
  return calculateSlot(keyToBytes(key));
}
