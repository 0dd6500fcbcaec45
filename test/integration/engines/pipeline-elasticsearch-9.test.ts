import { runEnginePipeline } from '../../support/engine-pipeline';
import { testEngine } from '../../support/engines';

runEnginePipeline(testEngine('elasticsearch-9'));
