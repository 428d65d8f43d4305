"""Results ▸ Find a good setting: the search's options, its live scatter plot and its words."""
