"""Floor 7: the stages of one run (check, identify, select, write) over the models a Pipeline holds."""
