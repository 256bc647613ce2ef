#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { addImageVaultStacks, readAppConfig } from '../lib/infra';

// The imagevault CDK app: `npx cdk synth` / `npx cdk deploy --all`. Settings: cdk.json's context (see README).
const app = new App();
addImageVaultStacks(
  app,
  readAppConfig((key) => app.node.tryGetContext(key)),
);
// cdk-nag AwsSolutions: any unacknowledged finding fails the synth.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
