"""Floor 9: the orchestrator every caller (CLI, app jobs, tests) runs, and the multi-process launcher."""
