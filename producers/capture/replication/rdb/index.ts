export { ByteReader, chunksOf, chunksOfBuffer, type ChunkSource } from './byte-reader';
export { crc64 } from './crc64';
export { decodeDumpPayload, type DumpPayload } from './dump-payload';
export { RdbFormatError } from './errors';
export { lzfDecompress } from './lzf';
export { MAX_RDB_VERSION, readRdb, readRdbKeys, type ReadRdbOptions } from './rdb-stream';
export type { DecodedValue, RdbEncoding, RdbKeyRecord, RdbKeyRef, RdbMetaRecord, RdbRecord, RdbValue } from './types';
