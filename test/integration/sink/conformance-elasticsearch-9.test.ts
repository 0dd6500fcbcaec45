import { describeSinkConformance } from '../../support/sink-conformance';

describeSinkConformance('elasticsearch-9');
