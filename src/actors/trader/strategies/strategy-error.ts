export type StrategyErrorCode =
  | 'STRATEGY_UNKNOWN' // no built-in strategy by that name and no module given
  | 'STRATEGY_PARAMS' // a parameter failed validation
  | 'STRATEGY_MODULE'; // the user's module could not be loaded or its export is not a strategy factory

export class StrategyError extends Error {
  readonly code: StrategyErrorCode;
  constructor(code: StrategyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StrategyError';
    this.code = code;
  }
}
