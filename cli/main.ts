#!/usr/bin/env node
import { createProgram } from './program';

void createProgram()
  .run(process.argv)
  .then(({ exitCode, failed }) => {
    if (exitCode !== undefined) process.exitCode = exitCode;
    // Everything was closed on the way out; if a handle still lingers, it must not hold the exit.
    if (failed) setTimeout(() => process.exit(exitCode), 1000).unref();
  });
