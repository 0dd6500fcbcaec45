import { Client } from '@elastic/elasticsearch';
import { esUrl } from './elasticsearch';

/*
 * The tests' own Elasticsearch client, beside the service's sink: a test arranges and inspects
 * the index (blocks writes, plants a wrong document, reads mappings) with calls the sink port
 * deliberately does not offer. Closed after the test file.
 */
let client: Client | undefined;

export function testEs(): Client {
  client ??= new Client({ node: esUrl(), requestTimeout: 30000 });
  return client;
}

if (typeof afterAll === 'function')
  afterAll(async () => {
    await client?.close();
    client = undefined;
  });
