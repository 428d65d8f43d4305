"""Floor 5: Contrastive Gradient Identification: scoring passes, placement, collectives, selection, estimate."""
