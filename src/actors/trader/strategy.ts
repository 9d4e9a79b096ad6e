/** Kept for imports written before the split: the contract is strategies/contract.ts, the loader strategies/registry.ts. */
export * from './strategies/contract.ts';
export * from './strategies/registry.ts';
export { StrategyError, type StrategyErrorCode } from './strategies/strategy-error.ts';
