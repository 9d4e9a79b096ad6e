/**
 * Strategy parameters are validated at load time with zod, and refused with the parameter's name.
 * Params are written in snake_case (`allow_short`, `entry_z`), like every JSON field; the camelCase
 * spelling the schemas use inside (`allowShort`) is accepted too. Errors name the param as the user
 * wrote it.
 */
import type { z } from 'zod';
import { StrategyError } from './strategy-error.ts';

const camel = (k: string) => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

export function parseParams<S extends z.ZodType>(strategy: string, schema: S, params: Record<string, unknown> | undefined): z.output<S> {
  const given = params ?? {};
  const input: Record<string, unknown> = {};
  /** Inner (camelCase) name -> what the user typed. */
  const typed = new Map<string, string>();
  for (const [k, v] of Object.entries(given)) {
    const inner = camel(k);
    if (typed.has(inner)) {
      throw Object.assign(new StrategyError('STRATEGY_PARAMS', `strategy "${strategy}": param "${k}" is given twice (as "${typed.get(inner)}" too)`), {
        field: `strategy_params.${k}`,
      });
    }
    typed.set(inner, k);
    input[inner] = v;
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const shown = (name: string) => typed.get(name) ?? name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.length > 0 ? issue.path.map((p) => shown(String(p))).join('.') : '(params)';
    // zod reports unknown keys on the object itself; name them, since that is what the user typed.
    if (issue.code === 'unrecognized_keys') return `unknown param ${issue.keys.map((k) => `"${shown(k)}"`).join(', ')}`;
    return `param "${name}": ${issue.message}`;
  });
  // The field names the first bad param, so an HTTP 400 or a config: line points at it.
  const first = result.error.issues[0];
  const name = first.code === 'unrecognized_keys' ? shown(first.keys[0]) : first.path.map((p) => shown(String(p))).join('.');
  throw Object.assign(new StrategyError('STRATEGY_PARAMS', `strategy "${strategy}": ${problems.join('; ')}`), {
    field: name ? `strategy_params.${name}` : 'strategy_params',
  });
}
