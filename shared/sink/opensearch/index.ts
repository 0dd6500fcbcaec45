export { createOpenSearchSink, type OpenSearchSinkOptions } from './sink';
export { openSearchClientOptions } from './client';
export { describeOpenSearchError, isOpenSearchAuthError, isOpenSearchClientError } from './errors';
