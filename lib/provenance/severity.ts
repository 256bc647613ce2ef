/**
 * Severities from most to least severe: ECR's FindingSeverity values, and Inspector's UNTRIAGED. A module of its own,
 * with no imports, so that the CLI's help can name them without loading the provenance code.
 */
export const SEVERITY_ORDER = [
  'CRITICAL',
  'HIGH',
  'MEDIUM',
  'LOW',
  'INFORMATIONAL',
  'UNDEFINED',
  'UNTRIAGED',
] as const;
