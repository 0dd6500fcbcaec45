export { createOpenSearchSink, type OpenSearchSinkOptions } from './sink';
export { openSearchClientOptions } from './client';
