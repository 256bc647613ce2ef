import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { formatAlert, type Alert, type AlertPublisher } from '../alerts';

/** Publishes to an SNS topic: the formatted subject and text, and the attributes as String message attributes. */
export class SnsAlertPublisher implements AlertPublisher {
  constructor(
    private readonly client: SNSClient,
    readonly topicArn: string,
  ) {}

  async publish(alert: Alert): Promise<void> {
    const f = formatAlert(alert);
    await this.client.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        Subject: f.subject,
        Message: f.message,
        MessageAttributes: {
          kind: { DataType: 'String', StringValue: f.attributes.kind },
          repository: { DataType: 'String', StringValue: f.attributes.repository },
          severity: { DataType: 'String', StringValue: f.attributes.severity },
        },
      }),
    );
  }
}
