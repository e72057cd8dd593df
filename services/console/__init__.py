"""The web console and management API: models, lineage, live accuracy, actions, roles, audit."""
