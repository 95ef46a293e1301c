"""Chart tests: helm template, schema, RBAC, checkov, image."""
