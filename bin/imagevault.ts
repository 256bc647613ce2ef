#!/usr/bin/env node
import * as path from 'node:path';
import { requireWithCodeCache } from '../lib/cli/code-cache';
import { main } from '../lib/cli/main';
import type { Commands } from '../lib/cli/program';

/*
 * The installed command: this file holds the CLI's table of contents (commands, options, help), and the bundle
 * beside it (commands.js, built by scripts/build-cli.ts) holds what the commands do. That bundle is loaded only
 * when a command runs, through V8's code cache.
 */

// The SDK's notice that its releases after January 2027 need Node ≥ 22 is not for our users: the CLI carries the SDK
// it was built and tested with, and package.json `engines` states the Node versions the CLI supports.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const loadCommands = async () => requireWithCodeCache(path.join(__dirname, 'commands.js')) as Commands;

main(process.argv, loadCommands).then((code) => {
  process.exitCode = code;
});
