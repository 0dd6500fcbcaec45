import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { createProgram } from '../../../cli/program';
import { configEnvVars, loadConfig } from '../../../shared/platform/config/load';
import { ConfigSchema } from '../../../producers/capture/registry';
import { partitionQueues } from '../../../shared/core/partitions';

/**
 * The deployment files (Dockerfile, docker-compose.yml, deploy/kubernetes/) only run commands
 * the CLI has and set variables the configuration loader reads: a renamed command or variable
 * fails here rather than in someone's cluster.
 */
const ROOT = resolve(__dirname, '../../..');
const K8S = join(ROOT, 'deploy/kubernetes');

/** Read by the runtime rather than the config loader, and documented in the Dockerfile. */
const RUNTIME_ENV = ['NODE_ENV'];

type Obj = Record<string, unknown>;

function yamlDocs(path: string): Obj[] {
  return parseAllDocuments(readFileSync(path, 'utf8'), { merge: true }).map((doc) => {
    expect({ file: path, errors: doc.errors.map((e) => e.message) }).toEqual({ file: path, errors: [] });
    return doc.toJS() as Obj;
  });
}

/** The commands of the program the CLI builds, asked in-process (its help lists the same). */
function cliCommands(): string[] {
  return createProgram({ stdout: () => undefined, stderr: () => undefined, env: {} }).command.commands.map((c) =>
    c.name(),
  );
}

const commands = cliCommands();
const envNames = new Set([...configEnvVars(), ...configEnvVars().map((v) => `${v}_FILE`), ...RUNTIME_ENV]);

const k8sFiles = readdirSync(K8S).filter((f) => f.endsWith('.yaml'));
const k8s = k8sFiles.flatMap((f) => yamlDocs(join(K8S, f)).map((doc) => ({ file: f, doc })));
const byKind = (kind: string): Obj[] =>
  k8s.filter((d) => d.doc.kind === kind && d.doc.metadata !== undefined).map((d) => d.doc);
const named = (kind: string, name: string): Obj | undefined =>
  byKind(kind).find((d) => (d.metadata as Obj).name === name);

describe('the CLI as the deployment files see it', () => {
  it('lists its commands', () => {
    expect(commands).toEqual(expect.arrayContaining(['run', 'producer', 'worker', 'snapshot', 'verify']));
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

  it('is multi-stage, runs the built CLI as an unprivileged user, by default `run`', () => {
    expect(text.match(/^FROM .+ AS (\w+)$/gm)).toHaveLength(2);
    expect(text).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    expect(text).toMatch(/^USER node$/m);
    expect(text).toMatch(/^ENTRYPOINT \["node", "dist\/cli\/main\.js"\]$/m);
    const cmd = JSON.parse(/^CMD (.+)$/m.exec(text)?.[1] ?? '[]') as string[];
    expect(commands).toContain(cmd[0]);
  });

  it('sets only variables that are read', () => {
    for (const [, name] of text.matchAll(/^ENV (\w+)=/gm)) expect(envNames).toContain(name);
  });
});

describe('docker-compose.yml', () => {
  const compose = yamlDocs(join(ROOT, 'docker-compose.yml'))[0]!;
  // Services the tests name exist (the first test fails otherwise), so lookups are typed as present.
  const services = compose.services as Record<string, Obj> &
    Record<'producer' | 'worker' | 'dashboard' | 'queue-redis', Obj>;
  const ours = Object.entries(services).filter(
    ([, s]) => s.build !== undefined || String(s.image).startsWith('redis-es-sync'),
  );

  it('runs producer, worker and dashboard from the image, with real commands and known variables', () => {
    expect(Object.fromEntries(ours.map(([name, s]) => [name, (s.command as string[])[0]]))).toEqual({
      producer: 'producer',
      worker: 'worker',
      dashboard: 'dashboard',
    });
    for (const [name, s] of ours) {
      expect({ name, command: commands.includes((s.command as string[])[0]!) }).toEqual({ name, command: true });
      for (const key of Object.keys(s.environment as Obj))
        expect({ service: name, env: key, known: envNames.has(key) }).toEqual({ service: name, env: key, known: true });
    }
  });

  it('checks producer and worker health on /healthz of HTTP_PORT', () => {
    for (const name of ['producer', 'worker', 'dashboard']) {
      const s = services[name]!;
      const env = s.environment as Obj;
      const test = ((s.healthcheck as Obj).test as string[]).join(' ');
      expect(test).toContain(`http://127.0.0.1:${String(env.HTTP_PORT)}/healthz`);
    }
  });

  it('lets workers scale: no fixed container name, no host port', () => {
    expect(services.worker.container_name).toBeUndefined();
    expect(services.worker.ports).toBeUndefined();
  });

  it('serves the dashboard on all interfaces only with credentials from secrets: basic auth for a browser, a viewer token for scrapers', () => {
    const env = services.dashboard.environment as Obj;
    expect(env.HTTP_HOST).toBe('0.0.0.0');
    expect(env.HTTP_OPERATOR_USERNAME).toBe('ops');
    expect(env.HTTP_OPERATOR_PASSWORD_FILE).toBe('/run/secrets/dashboard_password');
    expect(env.HTTP_VIEWER_TOKEN_FILE).toBe('/run/secrets/http_viewer_token');
    expect(env.HTTP_AUTH_TOKEN_FILE).toBeUndefined();
    expect(services.dashboard.secrets).toEqual(expect.arrayContaining(['dashboard_password', 'http_viewer_token']));
    expect((compose.secrets as Obj).dashboard_password).toEqual({ environment: 'DASHBOARD_PASSWORD' });
    expect((compose.secrets as Obj).http_viewer_token).toEqual({ environment: 'HTTP_VIEWER_TOKEN' });
    expect(services.dashboard.ports).toEqual(['127.0.0.1:3000:3000']);
  });

  it('keeps the queue Redis persistent and never evicting', () => {
    expect(services['queue-redis'].command).toEqual(
      expect.arrayContaining(['--appendonly', 'yes', '--maxmemory-policy', 'noeviction']),
    );
  });
});

describe('deploy/kubernetes', () => {
  interface Container {
    name: string;
    image: string;
    args?: string[];
    env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
    envFrom?: { secretRef?: { name: string }; configMapRef?: { name: string } }[];
    ports?: { name: string; containerPort: number }[];
    livenessProbe?: { httpGet: { path: string; port: string | number } };
    readinessProbe?: { httpGet: { path: string; port: string | number } };
    volumeMounts?: { name: string; mountPath: string }[];
  }
  interface PodSpec {
    containers: Container[];
    volumes?: { name: string; configMap?: { name: string } }[];
  }
  const deployments = byKind('Deployment');
  const podSpec = (d: Obj): PodSpec => ((d.spec as Obj).template as Obj).spec as PodSpec;
  const deployment = (component: string): Obj => {
    const d = deployments.find((x) => (x.metadata as Obj).name === `redis-es-sync-${component}`);
    if (!d) throw new Error(`no Deployment redis-es-sync-${component}`);
    return d;
  };
  const secretKeys = (name: string): string[] =>
    Object.keys((named('Secret', name)?.stringData as Obj | undefined) ?? {});

  it('every document has a kind and a name; kustomization lists every file', () => {
    for (const { file, doc } of k8s) {
      if (doc.kind === 'Kustomization') continue;
      expect({ file, kind: typeof doc.kind, name: typeof (doc.metadata as Obj | undefined)?.name }).toEqual({
        file,
        kind: 'string',
        name: 'string',
      });
    }
    const kustomization = k8s.find((d) => d.doc.kind === 'Kustomization')?.doc;
    expect(new Set((kustomization?.resources as string[]).concat('kustomization.yaml'))).toEqual(new Set(k8sFiles));
  });

  it('runs producer, worker and dashboard with real commands, known variables and existing references', () => {
    expect(deployments.map((d) => podSpec(d).containers[0]!.args?.[0]).sort()).toEqual([
      'dashboard',
      'producer',
      'worker',
    ]);
    for (const d of deployments) {
      const spec = podSpec(d);
      for (const c of spec.containers) {
        expect({ container: c.name, command: commands.includes(c.args?.[0] ?? '') }).toEqual({
          container: c.name,
          command: true,
        });
        for (const e of c.env ?? []) {
          expect({ container: c.name, env: e.name, known: envNames.has(e.name) }).toEqual({
            container: c.name,
            env: e.name,
            known: true,
          });
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) expect(secretKeys(ref.name)).toContain(ref.key);
        }
        for (const from of c.envFrom ?? []) {
          const name = from.secretRef?.name ?? '';
          expect(named('Secret', name)).toBeDefined();
          for (const key of secretKeys(name))
            expect({ secret: name, env: key, known: envNames.has(key) }).toEqual({
              secret: name,
              env: key,
              known: true,
            });
        }
        // CONFIG names the file the ConfigMap volume provides.
        const config = c.env?.find((e) => e.name === 'CONFIG')?.value ?? '';
        const mount = c.volumeMounts?.find((m) => config.startsWith(`${m.mountPath}/`));
        const volume = spec.volumes?.find((v) => v.name === mount?.name);
        const configMap = named('ConfigMap', volume?.configMap?.name ?? '');
        expect(Object.keys((configMap?.data as Obj | undefined) ?? {})).toContain(
          config.slice((mount?.mountPath.length ?? 0) + 1),
        );
      }
    }
  });

  it('probes /healthz (liveness) and /readyz (readiness) on the HTTP_PORT the container serves', () => {
    for (const d of deployments) {
      const c = podSpec(d).containers[0]!;
      const port = Number(c.env?.find((e) => e.name === 'HTTP_PORT')?.value);
      expect(port).toBeGreaterThan(0);
      expect(c.env?.find((e) => e.name === 'HTTP_HOST')?.value).toBe('0.0.0.0');
      expect(c.livenessProbe?.httpGet.path).toBe('/healthz');
      expect(c.readinessProbe?.httpGet.path).toBe('/readyz');
      const probePort = c.livenessProbe?.httpGet.port;
      const containerPort =
        typeof probePort === 'number' ? probePort : c.ports?.find((p) => p.name === probePort)?.containerPort;
      expect(containerPort).toBe(port);
    }
  });

  it('ships a ConfigMap config file the loader accepts', () => {
    const text = (named('ConfigMap', 'redis-es-sync-config')?.data as Record<string, string>)['sync.yml']!;
    const file = join(mkdtempSync(join(tmpdir(), 'res-k8s-')), 'sync.yml');
    writeFileSync(file, text);
    const { config } = loadConfig(
      ConfigSchema,
      { config: file },
      { REDIS_URL: 'redis://r:6379', ELASTICSEARCH_URL: 'http://es:9200' },
    );
    expect(config.producer.leaseTtlMs).toBeGreaterThan(config.producer.leaseRenewMs);
  });

  it('runs one producer (the lease makes a rolling update safe) and scales workers on the BullMQ wait list', () => {
    expect((deployment('producer').spec as Obj).replicas).toBe(1);
    const scaled = byKind('ScaledObject');
    expect(scaled).toHaveLength(1);
    const spec = scaled[0]!.spec as Obj;
    expect((spec.scaleTargetRef as Obj).name).toBe('redis-es-sync-worker');
    const configText = (named('ConfigMap', 'redis-es-sync-config')?.data as Record<string, string>)['sync.yml']!;
    const queue = (
      parseAllDocuments(configText)[0]!.toJS() as { queue: { prefix: string; name: string; partitions?: number } }
    ).queue;
    // One trigger per partition's wait list, summed by the formula (KEDA would take their maximum).
    const lists = partitionQueues(queue.prefix, queue.name, queue.partitions ?? 1).map(
      (q) => `${q.prefix}:${q.name}:wait`,
    );
    const triggers = spec.triggers as Obj[];
    expect(triggers.map((t) => (t.metadata as Obj).listName)).toEqual(lists);
    const modifiers = (spec.advanced as Obj).scalingModifiers as Obj;
    expect(
      String(modifiers.formula)
        .split('+')
        .map((t) => t.trim()),
    ).toEqual(triggers.map((t) => t.name));
    for (const trigger of triggers) {
      expect(trigger.type).toBe('redis');
      const auth = named('TriggerAuthentication', ((trigger.authenticationRef as Obj).name as string) ?? '');
      for (const ref of (auth?.spec as Obj).secretTargetRef as { name: string; key: string }[])
        expect(secretKeys(ref.name)).toContain(ref.key);
    }
  });
});
