/** Every code a storage error carries (see src/errors.ts). */
import { BarkeepError } from '../errors.ts';

/** Why a bar was refused (bar-validation.ts); `field` names the bar's field. */
export type BarValidationCode = 'BAD_SYMBOL' | 'BAD_BAR_SIZE' | 'BAD_PRICE' | 'BAD_VOLUME' | 'BAD_RANGE' | 'BAD_TIME' | 'BAD_SOURCE';

export type StorageErrorCode =
  | BarValidationCode
  | 'BAD_RETENTION' // a retention setting that is not a positive number of days
  | 'ORDER_JOURNAL' // the order journal could not be read or written
  | 'DATA_DIR_IN_USE'; // another barkeep process holds the data directory

/** A storage error without a class of its own (settings, the order journal). */
export class StorageError extends BarkeepError<StorageErrorCode> {}
