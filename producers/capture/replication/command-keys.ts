import { keyFromBytes } from '../../../shared/core/bytes';
import type { RedisClient } from '../../../shared/platform/redis';

interface KeyPositions {
  first: number;
  last: number;
  step: number;
  /** Key positions depend on the arguments (ZUNIONSTORE, SORT ... STORE): ask the server. */
  movable: boolean;
}

type CommandInfo = [string, number, string[], number, number, number, ...unknown[]];

/** Keys (escaped strings, shared/core/bytes.ts) a command of the replication stream touches, or 'unknown' when the server cannot say. */
export type CommandKeysResult = string[] | 'unknown';

/**
 * Which arguments of a command are keys, from the master's own COMMAND table (so module
 * commands and newer versions are covered): fixed first/last/step positions for most
 * commands, per subcommand for container commands (XGROUP CREATE), and COMMAND GETKEYS for
 * the few whose key positions depend on their arguments.
 */
export class CommandKeys {
  private constructor(
    private readonly table: Map<string, KeyPositions>,
    private readonly redis: RedisClient,
  ) {}

  static async load(redis: RedisClient): Promise<CommandKeys> {
    const table = new Map<string, KeyPositions>();
    const add = (info: CommandInfo): void => {
      const [name, , flags, first, last, step] = info;
      table.set(name.toLowerCase(), { first, last, step, movable: flags.includes('movablekeys') });
      const subcommands = info[9];
      if (Array.isArray(subcommands)) for (const sub of subcommands as CommandInfo[]) add(sub);
    };
    for (const info of (await redis.call('COMMAND')) as CommandInfo[]) add(info);
    return new CommandKeys(table, redis);
  }

  async keys(args: readonly Buffer[]): Promise<CommandKeysResult> {
    const name = (args[0] ?? Buffer.alloc(0)).toString('latin1').toLowerCase();
    let pos = this.table.get(name);
    if (pos !== undefined && args.length > 1) {
      const sub = this.table.get(`${name}|${(args[1] as Buffer).toString('latin1').toLowerCase()}`);
      if (sub !== undefined) pos = sub;
    }
    if (pos === undefined) return 'unknown';
    if (pos.movable) return this.askServer(args);
    if (pos.first <= 0) return [];
    const last = pos.last < 0 ? args.length + pos.last : pos.last;
    const out: string[] = [];
    for (let i = pos.first; i <= last && i < args.length; i += Math.max(pos.step, 1))
      out.push(keyFromBytes(args[i] as Buffer));
    return out;
  }

  private async askServer(args: readonly Buffer[]): Promise<CommandKeysResult> {
    try {
      const keys = (await this.redis.callBuffer('COMMAND', 'GETKEYS', ...args)) as Buffer[];
      return keys.map(keyFromBytes);
    } catch (err) {
      // "The command has no key arguments" is an answer; anything else is not.
      return /no key arguments/i.test((err as Error).message) ? [] : 'unknown';
    }
  }
}
