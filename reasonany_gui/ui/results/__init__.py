"""Step 6, Results: where the model is, the masks, re-tuning, the evaluation, the search and the run summary."""
