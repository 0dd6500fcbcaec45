import { Redis } from 'ioredis';

/**
 * Fills REDIS_URL with N keys of every type the tool syncs (hashes, JSON and plain strings
 * with and without TTL, lists, sets, sorted sets, streams), for the quick start's demo.
 *   node --env-file=.stack/env dist/scripts/seed-demo.js [N]     (npm run seed -- N)
 */
async function main(): Promise<void> {
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL is not set (start the stack: npm run stack up)');
  const total = Number(process.argv[2] ?? 10000);
  if (!Number.isSafeInteger(total) || total < 1)
    throw new Error(`key count must be a positive integer, got ${process.argv[2]}`);
  const redis = new Redis(url);
  const started = Date.now();
  try {
    for (let from = 0; from < total; from += 1000) {
      const pipe = redis.pipeline();
      for (let i = from; i < Math.min(from + 1000, total); i++) writeKey(pipe, i);
      await pipe.exec();
    }
  } finally {
    redis.disconnect();
  }
  process.stdout.write(`wrote ${total} keys of mixed types in ${Date.now() - started} ms\n`);
}

type Pipeline = ReturnType<Redis['pipeline']>;

function writeKey(pipe: Pipeline, i: number): void {
  switch (i % 10) {
    case 0:
    case 1:
    case 2:
    case 3:
      pipe.hset(`user:${i}`, {
        name: `User ${i}`,
        email: `user${i}@example.com`,
        city: CITIES[i % CITIES.length],
        visits: String(i % 97),
        plan: i % 3 ? 'free' : 'pro',
        created: String(1_700_000_000 + i),
      });
      return;
    case 4:
    case 5:
      pipe.set(
        `product:${i}`,
        JSON.stringify({
          sku: `SKU-${i}`,
          title: `Product ${i}`,
          price: (i % 500) + 0.99,
          tags: ['demo', CITIES[i % CITIES.length]],
        }),
      );
      return;
    case 6:
      pipe.set(`session:${i}`, `token-${i}`, 'EX', 3600);
      return;
    case 7:
      pipe.rpush(`feed:${i}`, `post ${i}`, `post ${i + 1}`, `post ${i + 2}`);
      return;
    case 8:
      if (i % 20 === 8) pipe.sadd(`tags:${i}`, 'red', 'green', String(i));
      else pipe.zadd(`board:${i}`, i % 100, 'ada', (i * 7) % 100, 'bob', (i * 13) % 100, 'cy');
      return;
    default:
      pipe.xadd(`events:${i}`, '*', 'type', 'login', 'user', String(i));
  }
}

const CITIES = ['Lisbon', 'Oslo', 'Lagos', 'Lima', 'Pune', 'Osaka'];

main().catch((err: unknown) => {
  process.stderr.write(`seed-demo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
