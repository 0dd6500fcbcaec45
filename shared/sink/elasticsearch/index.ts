import { DependencyError } from '../../platform/errors';
import { redactUrl } from '../../platform/logger';
import type { Sink, SinkOptions } from '../port';
import { createEsClient } from './clients';
import { ElasticsearchSink } from './sink';

/** The Elasticsearch majors this build has a client for. */
export const SUPPORTED_ES_MAJORS = [8, 9] as const;

/** Elasticsearch 8.x through @elastic/elasticsearch 8, 9.x through 9: the client of the server's major. */
export function createElasticsearchSink(options: SinkOptions): Sink {
  const major = Number.parseInt(options.engine.version, 10);
  if (major !== 8 && major !== 9)
    throw new DependencyError(
      'ES_UNSUPPORTED',
      'elasticsearch',
      redactUrl(options.connection.url),
      `Elasticsearch ${options.engine.version} is not supported`,
      `run Elasticsearch ${SUPPORTED_ES_MAJORS.join('.x or ')}.x`,
    );
  const client = createEsClient(major, options.connection, options.logger);
  return new ElasticsearchSink(options.engine, client, options.connection, options.sourceOf);
}

export { describeEsError, isClientError, isResponseError } from './errors';
