import type { AppConfig } from '../platform/config/schema';
import type { SourceOf } from '../platform/dependencies';
import { DependencyError } from '../platform/errors';
import { redactUrl, type Logger } from '../platform/logger';
import { detectEngine } from './detect';
import { createElasticsearchSink, describeEsError, isClientError, isResponseError } from './elasticsearch';
import {
  createOpenSearchSink,
  describeOpenSearchError,
  isOpenSearchAuthError,
  isOpenSearchClientError,
} from './opensearch';
import type { EngineInfo, Sink, SinkOptions } from './port';

export interface CreateSinkOptions {
  connection: AppConfig['elasticsearch'];
  engine: AppConfig['sink']['engine'];
  /** `sink.aws`: SigV4 signing for Amazon OpenSearch Service. */
  aws?: AppConfig['sink']['aws'];
  logger: Logger;
  sourceOf: SourceOf;
  /** Bound of the detection request (`dependencies.timeoutMs`). */
  detectTimeoutMs: number;
}

/**
 * The process's one sink. Which adapter serves it is known only once the engine has answered
 * (the product, and for Elasticsearch the major, pick the client), so it is chosen on the first
 * call (the start-up probe's `health`) and kept; a failed detection is tried again by the next call.
 */
export function createSink(options: CreateSinkOptions): Sink {
  return new DetectingSink(options);
}

/** The adapter for what answered; an unsupported product or version is an `ES_UNSUPPORTED` error that names it. */
export function sinkFor(
  engine: EngineInfo,
  options: Omit<SinkOptions, 'engine'> & { aws?: AppConfig['sink']['aws'] },
): Sink {
  const { aws, ...common } = options;
  const full: SinkOptions = { ...common, engine };
  if (engine.product === 'elasticsearch') return createElasticsearchSink(full);
  // 1.x lacks what the adapter relies on (point in time came in 2.4); `unknown` is a configured
  // `sink.engine: opensearch`, whose version the signed requests find out.
  const major = Number(engine.version.split('.')[0]);
  if (engine.version !== 'unknown' && !(major >= 2))
    throw new DependencyError(
      'ES_UNSUPPORTED',
      'elasticsearch',
      redactUrl(options.connection.url),
      `OpenSearch ${engine.version} answered; supported are OpenSearch 2.x and 3.x`,
      'upgrade OpenSearch, or point elasticsearch.url at a supported engine',
    );
  return createOpenSearchSink({ ...full, ...(aws ? { aws } : {}) });
}

/**
 * For a failure no caller turned into a DependencyError (the last resort of the CLI): one line
 * when it is an engine client's error, with a hint for refused credentials; undefined otherwise.
 */
export function describeSinkFailure(err: unknown): string | undefined {
  if (isResponseError(err) && err.statusCode === 401)
    return `Elasticsearch refused the credentials (${describeEsError(err).trim()}): check ELASTICSEARCH_API_KEY or ELASTICSEARCH_USERNAME/PASSWORD`;
  if (isClientError(err)) return `Elasticsearch: ${describeEsError(err)}`;
  if (isOpenSearchAuthError(err))
    return `OpenSearch refused the credentials (${describeOpenSearchError(err).trim()}): check ELASTICSEARCH_USERNAME/PASSWORD or the AWS credentials`;
  if (isOpenSearchClientError(err)) return `OpenSearch: ${describeOpenSearchError(err)}`;
  return undefined;
}

class DetectingSink implements Sink {
  private adapter: Sink | undefined;
  private resolving: Promise<Sink> | undefined;

  constructor(private readonly options: CreateSinkOptions) {}

  get engine(): EngineInfo {
    if (!this.adapter) throw new Error('the sink has not reached its engine yet: call health() first');
    return this.adapter.engine;
  }

  private resolve(timeoutMs = this.options.detectTimeoutMs): Promise<Sink> {
    if (this.adapter) return Promise.resolve(this.adapter);
    this.resolving ??= this.detect(timeoutMs).then(
      (adapter) => (this.adapter = adapter),
      (err: unknown) => {
        this.resolving = undefined;
        throw err;
      },
    );
    return this.resolving;
  }

  private async detect(timeoutMs: number): Promise<Sink> {
    const { connection, engine, aws, logger, sourceOf } = this.options;
    const info: EngineInfo =
      // Amazon OpenSearch Service signs every request (SigV4), which the raw detection does not:
      // configured as opensearch (or with `sink.aws`, which only OpenSearch takes), the adapter
      // finds out the version itself.
      engine === 'opensearch' || aws?.region !== undefined
        ? { product: 'opensearch', version: 'unknown' }
        : await detectEngine(connection, timeoutMs, sourceOf, logger);
    if (engine !== 'auto' && info.product !== engine)
      throw new DependencyError(
        'ES_UNSUPPORTED',
        'elasticsearch',
        redactUrl(connection.url),
        `sink.engine is ${engine}, but ${info.product} ${info.version} answered`,
        'set sink.engine to auto or to the engine that runs there',
      );
    const adapter = sinkFor(info, { connection, logger, sourceOf, ...(aws ? { aws } : {}) });
    logger.info({ engine: info.product, version: info.version }, 'search engine detected');
    return adapter;
  }

  async bulk(...args: Parameters<Sink['bulk']>): ReturnType<Sink['bulk']> {
    return (await this.resolve()).bulk(...args);
  }

  isTransient(err: unknown): boolean {
    if (err instanceof DependencyError) return !err.permanent;
    return this.adapter?.isTransient(err) ?? false;
  }

  describeError(err: unknown): string {
    if (this.adapter) return this.adapter.describeError(err);
    return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  }

  async *scan(...args: Parameters<Sink['scan']>): ReturnType<Sink['scan']> {
    yield* (await this.resolve()).scan(...args);
  }

  async getDocuments(...args: Parameters<Sink['getDocuments']>): ReturnType<Sink['getDocuments']> {
    return (await this.resolve()).getDocuments(...args);
  }

  async search(...args: Parameters<Sink['search']>): ReturnType<Sink['search']> {
    return (await this.resolve()).search(...args);
  }

  async count(index: string): Promise<number> {
    return (await this.resolve()).count(index);
  }

  async indexExists(index: string): Promise<boolean> {
    return (await this.resolve()).indexExists(index);
  }

  async createIndex(...args: Parameters<Sink['createIndex']>): ReturnType<Sink['createIndex']> {
    return (await this.resolve()).createIndex(...args);
  }

  async deleteIndex(index: string): Promise<'deleted' | 'absent'> {
    return (await this.resolve()).deleteIndex(index);
  }

  async resolveIndex(name: string): ReturnType<Sink['resolveIndex']> {
    return (await this.resolve()).resolveIndex(name);
  }

  async updateAliases(...args: Parameters<Sink['updateAliases']>): ReturnType<Sink['updateAliases']> {
    await (await this.resolve()).updateAliases(...args);
  }

  async refresh(index: string): Promise<void> {
    await (await this.resolve()).refresh(index);
  }

  async health(timeoutMs: number): Promise<void> {
    await (await this.resolve(timeoutMs)).health(timeoutMs);
  }

  dependencyError(err: unknown, context: { timeoutMs?: number; tried?: string }): DependencyError {
    if (err instanceof DependencyError) return err;
    if (this.adapter) return this.adapter.dependencyError(err, context);
    return new DependencyError(
      'ES_ERROR',
      'elasticsearch',
      redactUrl(this.options.connection.url),
      err instanceof Error ? err.message : String(err),
      'check the search engine',
      { cause: err },
    );
  }

  async close(): Promise<void> {
    const adapter = this.adapter ?? (await this.resolving?.catch(() => undefined));
    await adapter?.close();
  }
}
