/** Why a strategy could not be made: codes in the trader's protocol.ts. */
import { BarkeepError } from '../../../errors.ts';
import type { StrategyErrorCode } from '../protocol.ts';

export type { StrategyErrorCode } from '../protocol.ts';

export class StrategyError extends BarkeepError<StrategyErrorCode> {}
