"""Case files and Python cases -> Case: YAML reading, the schema, the case language, registry, selection."""
