"""Floor 6: what a run writes besides the weights: report.json, report.html, the model card."""
