import { classifyItem, type BulkItemResponse } from '../../../../shared/sink/bulk-outcome';
import type { ItemOutcome } from '../../../../shared/sink/port';

const mapperError: BulkItemResponse = {
  status: 400,
  error: {
    type: 'mapper_parsing_exception',
    reason: "failed to parse field [age] of type [long] in document with id 'u1'",
    caused_by: { type: 'illegal_argument_exception', reason: 'For input string: "old"' },
  },
};

const table: [string, 'index' | 'delete', BulkItemResponse, ItemOutcome][] = [
  ['201 created', 'index', { status: 201, result: 'created' }, { kind: 'done', result: 'indexed' }],
  ['200 updated', 'index', { status: 200, result: 'updated' }, { kind: 'done', result: 'indexed' }],
  ['200 delete', 'delete', { status: 200, result: 'deleted' }, { kind: 'done', result: 'deleted' }],
  [
    '409 conflict on index',
    'index',
    { status: 409, error: { type: 'version_conflict_engine_exception', reason: 'current version [9] is higher' } },
    { kind: 'done', result: 'already-newer' },
  ],
  [
    '409 conflict on delete',
    'delete',
    { status: 409, error: { type: 'version_conflict_engine_exception' } },
    { kind: 'done', result: 'already-newer' },
  ],
  ['404 delete', 'delete', { status: 404, result: 'not_found' }, { kind: 'done', result: 'already-absent' }],
  [
    '404 index (index missing, auto-create off)',
    'index',
    { status: 404, error: { type: 'index_not_found_exception', reason: 'no such index [x]' } },
    { kind: 'rejected', reason: '404 index_not_found_exception: no such index [x]' },
  ],
  [
    '429 rejected execution',
    'index',
    { status: 429, error: { type: 'es_rejected_execution_exception', reason: 'queue full' } },
    { kind: 'retry', reason: '429 es_rejected_execution_exception: queue full' },
  ],
  [
    '503 unavailable shards',
    'delete',
    { status: 503, error: { type: 'unavailable_shards_exception', reason: null } },
    { kind: 'retry', reason: '503 unavailable_shards_exception: ' },
  ],
  ['500 without error body', 'index', { status: 500 }, { kind: 'retry', reason: 'status 500' }],
  [
    '400 mapper parsing with cause',
    'index',
    mapperError,
    {
      kind: 'rejected',
      reason:
        '400 mapper_parsing_exception: failed to parse field [age] of type [long] in document with id \'u1\' (caused by illegal_argument_exception: For input string: "old")',
    },
  ],
  [
    '400 error without type',
    'index',
    { status: 400, error: { reason: 'bad' } },
    { kind: 'rejected', reason: '400 error: bad' },
  ],
  ['413 too large', 'index', { status: 413 }, { kind: 'rejected', reason: 'status 413' }],
];

describe('classifyItem', () => {
  it.each(table)('%s', (_name, op, item, expected) => {
    expect(classifyItem(op, item)).toEqual(expected);
  });
});
