import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

/** Props of Alerts. */
export interface AlertsProps {
  /**
   * E-mail addresses subscribed to the alert topic.
   *
   * @default - none
   */
  readonly emails?: readonly string[];
}

/**
 * The alert path: one SNS topic for the Lambdas' own alerts and the alarms', and the customer managed key that
 * encrypts it and the queues (the vault's key stays for S3 and the Lambdas alone).
 */
export class Alerts extends Construct {
  /** Key of the queues and the alert topic. */
  readonly messagingKey: kms.Key;
  /** Where every alert goes. */
  readonly topic: sns.Topic;

  constructor(scope: Construct, id: string, props: AlertsProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    this.messagingKey = new kms.Key(this, 'MessagingKey', {
      description: 'imagevault queues and alert topic',
      enableKeyRotation: true,
    });
    // CloudWatch alarms publish to the encrypted topic.
    this.messagingKey.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    );

    this.topic = new sns.Topic(this, 'AlertTopic', {
      displayName: 'imagevault alerts',
      masterKey: this.messagingKey,
      enforceSSL: true,
    });
    // A topic policy replaces SNS's default one, and enforceSSL's holds only a Deny: without this Allow no alarm
    // could publish. CloudWatch publishes as its service principal, on behalf of an alarm of this account and region.
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowAlarmsOfThisAccount',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: {
            'aws:SourceArn': stack.formatArn({
              service: 'cloudwatch',
              resource: 'alarm',
              resourceName: '*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );
    for (const email of props.emails ?? []) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(email));
    }
  }

  /** sns:Publish on the topic, with the messaging key to encrypt the message. */
  grantPublish(grantee: iam.IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['sns:Publish'], resources: [this.topic.topicArn] }),
    );
    this.messagingKey.grant(grantee, 'kms:GenerateDataKey', 'kms:Decrypt');
  }

  /** What a role needs to send to a queue encrypted with the messaging key, besides sqs:SendMessage. */
  grantEncrypt(grantee: iam.IGrantable): void {
    this.messagingKey.grant(grantee, 'kms:GenerateDataKey', 'kms:Decrypt');
  }
}
