import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, type Timeouts } from './timeouts';

/*
 * How the S3 store's client is made: settings from the standard chain, the timeouts every request is held to, and
 * the unsigned payloads of object bodies. Apart from the store itself (./s3), which only sends commands.
 */

/** Ten seconds to connect: a reachable S3 endpoint connects in milliseconds, even across regions (never above the request timeout). */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Client settings from the standard chain (region, credentials, and the endpoint from AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL, which SDK v3 reads itself). With an endpoint override — radosgw, MinIO, a local test bed — the
 * bucket goes in the path (such servers rarely have wildcard DNS) and checksums are only sent when an operation
 * requires them: the SDK's default sends stream bodies aws-chunked with trailing checksums, which radosgw rejects
 * (411 MissingContentLength) and other servers store verbatim, framing included. Only the environment is looked at:
 * an `endpoint_url` in ~/.aws/config is honoured by the SDK but not seen here, so pass a configured client for that.
 */
export function s3ClientConfig(
  env: NodeJS.ProcessEnv = process.env,
  timeouts: Timeouts = {},
): S3ClientConfig {
  // Without timeouts a stalled server (seen: an OSD out of space) hangs a snapshot forever instead of failing it.
  // requestTimeout bounds a request until its response headers (a part's upload included: parts are 8 MiB by
  // default); without throwOnRequestTimeout the SDK only logs a warning when it passes. socketTimeout bounds a pause
  // mid-body, so a large download that stalls fails too. Each failure is retried by the SDK (3 attempts).
  const requestTimeout = timeouts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const requestHandler = {
    connectionTimeout: Math.min(CONNECT_TIMEOUT_MS, requestTimeout),
    requestTimeout,
    throwOnRequestTimeout: true,
    socketTimeout: timeouts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
  };
  // On AWS, a vault or replica bucket in another region than AWS_REGION is followed there, not an error.
  if (!endpointOverride(env)) return { requestHandler, followRegionRedirects: true };
  return {
    requestHandler,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

/**
 * Object bodies are sent with `x-amz-content-sha256: UNSIGNED-PAYLOAD`: the vault checks every blob against its
 * SHA-256 digest as it is written and again whenever it is read, so SigV4's own hash of each part was the same work
 * twice (12% of a 1 GiB snapshot's CPU). Headers and the request itself stay signed; TLS covers transit.
 */
export function withUnsignedPayload(client: S3Client): S3Client {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const op = context.commandName;
      const request = args.request as { headers?: Record<string, string> };
      if ((op === 'PutObjectCommand' || op === 'UploadPartCommand') && request.headers) {
        request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      }
      return next(args);
    },
    { step: 'build', name: 'imagevaultUnsignedPayload' },
  );
  return client;
}

/** The endpoint the SDK will use instead of AWS's, by the SDK's own rules for these variables. */
export function endpointOverride(env: NodeJS.ProcessEnv): string | undefined {
  if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS === 'true') return undefined;
  return env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
}
