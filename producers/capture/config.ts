import { z } from 'zod';
import { captureModeSource, type CaptureModeSource } from '../../shared/core/queue';
import { defineConfigSchema, type AppConfig } from '../../shared/platform/config/schema';

/**
 * What a capture mode declares about itself for the configuration and the job contract; each
 * mode's folder exports one (`<mode>/config.ts`) and its plugin spreads it.
 */
export interface CaptureModeConfig<N extends string = string, F extends z.ZodRawShape = z.ZodRawShape> {
  /** Its `producer.mode` value. */
  readonly name: N;
  /** The `src` of the jobs its live changes make (logs, dashboard, metrics). */
  readonly source: CaptureModeSource;
  /** How `producer.mode`'s description names it: one phrase, listed in registry order. */
  readonly summary: string;
  /**
   * Its config slice: its own fields under `producer` (`producer.outbox`). Each must be optional
   * or defaulted (a section's default is `{}`), and no other mode nor the shared section may use
   * its name.
   */
  readonly fields: F;
}

/** Declares a mode, keeping its name and fields' types exact so the composed schema and config are typed by them. */
export function defineCaptureModeConfig<const N extends string, const F extends z.ZodRawShape>(mode: {
  name: N;
  source: string;
  summary: string;
  fields: F;
}): CaptureModeConfig<N, F> {
  return { ...mode, source: captureModeSource(mode.source) };
}

/** The configuration a mode's code reads: every platform section, plus its own fields in `producer`, typed. */
export type ModeConfig<D extends CaptureModeConfig> = AppConfig & {
  producer: z.output<z.ZodObject<D['fields']>>;
};

type ModeList = readonly [CaptureModeConfig, ...CaptureModeConfig[]];

/** The fields of every mode in the (non-empty) list, as one shape. */
type FieldsOf<Ms extends readonly CaptureModeConfig[]> = Ms extends readonly [
  infer H extends CaptureModeConfig,
  ...infer R extends readonly CaptureModeConfig[],
]
  ? R extends readonly []
    ? H['fields']
    : H['fields'] & FieldsOf<R>
  : never;

/**
 * The full configuration schema for these modes: `producer.mode` is one of their names (the
 * first is the default), and each mode's fields sit in `producer`. The registry calls it with
 * every mode; a test can call it with one more.
 */
export function composeConfigSchema<const Ms extends ModeList>(modes: Ms) {
  const [first] = modes;
  const fields: Record<string, z.core.$ZodType> = {};
  const fieldOwner = new Map<string, string>();
  const sourceOwner = new Map<string, string>();
  const seen = new Set<string>();
  for (const mode of modes) {
    if (seen.has(mode.name)) throw new Error(`capture mode ${mode.name} is registered twice`);
    seen.add(mode.name);
    const sameSource = sourceOwner.get(mode.source);
    if (sameSource !== undefined) {
      throw new Error(`capture modes ${sameSource} and ${mode.name} both name their jobs' source ${mode.source}`);
    }
    sourceOwner.set(mode.source, mode.name);
    for (const [name, field] of Object.entries(mode.fields)) {
      const other = fieldOwner.get(name);
      if (other !== undefined) throw new Error(`capture modes ${other} and ${mode.name} both define producer.${name}`);
      fieldOwner.set(name, mode.name);
      fields[name] = field;
    }
  }
  const names = modes.map((m): Ms[number]['name'] => m.name);
  const mode = z
    .enum(names)
    .default(first.name)
    .describe(`How changes are captured ([capture modes](capture-modes.md)): ${phrases(modes.map((m) => m.summary))}.`);
  return defineConfigSchema({ mode, fields: fields as FieldsOf<Ms> });
}

/** `a, b, or c` (`a` alone, `a or b`). */
function phrases(items: readonly string[]): string {
  if (items.length <= 2) return items.join(' or ');
  return `${items.slice(0, -1).join(', ')}, or ${items.at(-1) ?? ''}`;
}
