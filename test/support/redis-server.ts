import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { getFreePort } from './ports';

export interface RedisServerHandle {
  port: number;
  /** redis://127.0.0.1:PORT */
  url: string;
  /** SIGTERM, then wait for the process to exit (SIGKILL after 10 s). Idempotent. */
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /** Value for --notify-keyspace-events, e.g. 'KEA'. Left at the server default ('') when omitted. */
  notifyKeyspaceEvents?: string;
  /** Extra redis-server arguments, e.g. ['--maxmemory-policy', 'noeviction']. */
  args?: string[];
  /** A config file given before the arguments (redis-server needs one for `--sentinel`). */
  configFile?: string;
  /** Only to restart a server on the port the OS gave its first run (clients reconnect there). */
  port?: number;
}

const STARTUP_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;

/**
 * Servers still running in this process get an 'exit' hook that SIGKILLs them, so a test
 * that fails before calling stop() cannot leak a redis-server. One hook per live server
 * (removed again by stop()), so listeners never pile up across test files.
 */
const exitHooks = new Map<ChildProcess, () => void>();

function track(child: ChildProcess): void {
  const hook = (): void => {
    child.kill('SIGKILL');
  };
  exitHooks.set(child, hook);
  process.once('exit', hook);
}

function untrack(child: ChildProcess): void {
  const hook = exitHooks.get(child);
  if (hook !== undefined) process.off('exit', hook);
  exitHooks.delete(child);
}

function redisServerBinary(): string {
  const fromEnv = process.env.REDIS_SERVER;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : 'redis-server';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Sends PING over a raw socket; resolves true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (!exited(child)) {
    child.kill('SIGTERM');
    if (!(await waitForExit(child, STOP_TIMEOUT_MS))) {
      child.kill('SIGKILL');
      await waitForExit(child, STOP_TIMEOUT_MS);
    }
  }
  untrack(child);
}

async function startOnce(opts: StartRedisOptions): Promise<RedisServerHandle | 'port-taken'> {
  const port = opts.port ?? (await getFreePort());
  const args = [
    ...(opts.configFile !== undefined ? [opts.configFile] : []),
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
  ];
  if (opts.notifyKeyspaceEvents !== undefined) {
    args.push('--notify-keyspace-events', opts.notifyKeyspaceEvents);
  }
  args.push(...(opts.args ?? []));

  const child = spawn(redisServerBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    if (spawnError !== undefined) {
      untrack(child);
      throw new Error(`could not spawn ${redisServerBinary()}: ${spawnError.message}`);
    }
    if (exited(child)) {
      untrack(child);
      if (/address already in use/i.test(output)) return 'port-taken';
      throw new Error(`redis-server exited during startup (code ${String(child.exitCode)}):\n${output}`);
    }
    if (await ping(port)) break;
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`redis-server on port ${port} did not answer PING within ${STARTUP_TIMEOUT_MS} ms:\n${output}`);
    }
    await sleep(25);
  }

  // The data listeners above keep draining output, so a chatty server never blocks on a full pipe.
  let stopping: Promise<void> | undefined;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop(): Promise<void> {
      stopping ??= stopChild(child);
      return stopping;
    },
  };
}

/**
 * Spawns a throwaway redis-server (Debian's /usr/bin/redis-server, or REDIS_SERVER, or the one
 * on PATH) on a free loopback port without persistence, and waits until it answers PING.
 */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServerHandle> {
  for (let attempt = 1; attempt <= 5; attempt += 1) {
    const result = await startOnce(opts);
    if (result !== 'port-taken') return result;
    if (opts.port !== undefined) throw new Error(`port ${opts.port} is taken: cannot restart redis-server there`);
  }
  throw new Error('could not find a free port for redis-server after 5 attempts');
}
