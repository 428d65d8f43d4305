"""Floor 3: MergeConfig and the per-field Setting metadata that the CLI, the app and the report read."""
