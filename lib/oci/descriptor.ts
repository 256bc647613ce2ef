import * as z from 'zod';
import { Digest } from './digest';

export const PlatformSchema = z.object({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional(),
});
export type Platform = z.infer<typeof PlatformSchema>;

const DigestString = z.string().refine(Digest.isValid, { message: 'not a valid sha256/sha512 digest' });

/** A Descriptor points at content by media type, digest and size; `.passthrough()` keeps unknown fields. */
export const DescriptorSchema = z
  .object({
    mediaType: z.string().min(1),
    digest: DigestString,
    size: z.number().int().nonnegative(),
    urls: z.array(z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    data: z.string().optional(),
    artifactType: z.string().optional(),
    platform: PlatformSchema.optional(),
  })
  .passthrough();
export type Descriptor = z.infer<typeof DescriptorSchema>;

export function platformString(p: Platform | undefined): string {
  if (!p) return 'unknown';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** A minimal descriptor: the fields that identify content, without annotations or platform. */
export function plainDescriptor(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}
