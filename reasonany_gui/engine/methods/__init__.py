"""Floor 2: the merge-method registry (one record per method) and the exact top-k count."""
