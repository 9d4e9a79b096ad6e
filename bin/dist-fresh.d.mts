/** Every file under `root`/src. */
export function sourceFiles(root: string): string[];
/** True when dist/.build-stamp is newer than every file under src/. */
export function distIsFresh(root: string): boolean;
