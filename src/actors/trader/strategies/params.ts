/** Strategy parameters are validated at load time with zod, and refused with the parameter's name. */
import type { z } from 'zod';
import { StrategyError } from './strategy-error.ts';

export function parseParams<S extends z.ZodType>(strategy: string, schema: S, params: Record<string, unknown> | undefined): z.output<S> {
  const result = schema.safeParse(params ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.length > 0 ? issue.path.join('.') : '(params)';
    // zod reports unknown keys on the object itself; name them, since that is what the user typed.
    if (issue.code === 'unrecognized_keys') return `unknown param ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    return `param "${name}": ${issue.message}`;
  });
  throw new StrategyError('STRATEGY_PARAMS', `strategy "${strategy}": ${problems.join('; ')}`);
}
