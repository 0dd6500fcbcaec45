import { describeSinkConformance } from '../../support/sink-conformance';

describeSinkConformance('opensearch-3');
