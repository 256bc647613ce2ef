/*
 * Every command's implementation, and the context they share: what the CLI loads once a command runs (its help and
 * argument parsing need none of it). Bundled as a file of its own (scripts/build-cli.ts).
 */
export { cliContext } from '../context';
export { awsSelftestCommand } from './aws-selftest';
export { baseCommand } from './base';
export { driftCheckCommand } from './drift';
export { exportCommand } from './export';
export { historyCommand } from './history';
export { inventoryCommand } from './inventory';
export { listCommand } from './list';
export { provenanceListCommand, provenanceShowCommand, provenanceVerifyCommand } from './provenance';
export { restoreCommand } from './restore';
export { snapshotCommand } from './snapshot';
export { verifyCommand } from './verify';
