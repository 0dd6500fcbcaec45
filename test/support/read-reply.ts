import { asBuffer, decodeKeyStates, type FieldPair, type KeyState } from '../../shared/core/key-state';

/**
 * One key as the read script's commands answer it, before the script packs it: its TYPE, its
 * PTTL and its value (GET's bytes, HGETALL's flat name/value list, XRANGE's [id, fields] entries,
 * ...). Tests write states this way; `decodeReply` packs them the way the script does and
 * decodes them with the worker's own decoder.
 */
export type RawReply = [Buffer, number?, unknown?];

const CODES: Readonly<Record<string, string>> = {
  string: 's',
  hash: 'h',
  list: 'l',
  set: 'S',
  zset: 'z',
  stream: 'x',
};

/** The script's record of one key (shared/core/key-state.ts), written independently of its Lua. */
export function packReply([typeBytes, ttl, value]: RawReply): Buffer {
  const type = typeBytes.toString('latin1');
  if (type === 'none') return Buffer.from('n');
  const code = CODES[type];
  let items: Buffer[];
  if (code === undefined) items = [typeBytes];
  else if (type === 'string') items = [value as Buffer];
  else if (type === 'stream')
    items = (value as [Buffer, Buffer[]][]).flatMap(([id, fields]) => {
      const count = Buffer.alloc(4);
      count.writeUInt32LE(fields.length);
      return [id, count, ...fields];
    });
  else items = value as Buffer[];
  const header = Buffer.alloc(13 + 4 * items.length);
  header.write(code ?? 'u', 0, 'latin1');
  header.writeDoubleLE(typeof ttl === 'number' ? ttl : -1, 1);
  header.writeUInt32LE(items.length, 9);
  items.forEach((item, i) => header.writeUInt32LE(item.length, 13 + 4 * i));
  return Buffer.concat([header, ...items]);
}

export function decodeReply(reply: RawReply): KeyState {
  return decodeKeyStates(packReply(reply), 1)[0] as KeyState; // one key, one state
}

/** A state with every item as a Buffer, as tests write them: the reader hands ASCII items over as text. */
export function inBytes(state: KeyState | undefined): KeyState | undefined {
  if (!state?.exists || state.type === 'unsupported') return state;
  const pairs = (ps: readonly FieldPair[]): FieldPair[] =>
    ps.map((p) => ({ name: asBuffer(p.name), value: asBuffer(p.value) }));
  switch (state.type) {
    case 'string':
      return { ...state, value: asBuffer(state.value) };
    case 'hash':
      return { ...state, value: pairs(state.value) };
    case 'list':
    case 'set':
      return { ...state, value: state.value.map(asBuffer) };
    case 'zset':
      return { ...state, value: state.value.map((e) => ({ ...e, member: asBuffer(e.member) })) };
    case 'stream':
      return { ...state, value: state.value.map((e) => ({ ...e, fields: pairs(e.fields) })) };
  }
}
