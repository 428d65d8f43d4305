"""Floor 1: what every other floor uses: errors, events, paths, devices, tensor-name layout."""
