import type { SourceOf } from '../platform/dependencies';

/** `ELASTICSEARCH_API_KEY_FILE`, `ELASTICSEARCH_USERNAME`, or that none are configured. */
export function credentialsOrigin(config: { apiKey?: string; username?: string }, sourceOf: SourceOf): string {
  const strip = (s: string | undefined): string | undefined => s?.replace(/^(env|flag|file) /, '');
  if (config.apiKey) return `credentials from ${strip(sourceOf('elasticsearch.apiKey')) ?? 'elasticsearch.apiKey'}`;
  if (config.username)
    return `credentials of user ${config.username} from ${strip(sourceOf('elasticsearch.username')) ?? 'elasticsearch.username'}`;
  return 'no credentials configured: set ELASTICSEARCH_API_KEY or ELASTICSEARCH_USERNAME and ELASTICSEARCH_PASSWORD';
}
