"""Daily subscription-data exports to S3: the package behind the export DAGs."""
