"""Floor 4: reading and writing files: model resolution and download, checkpoints, the writer, the score cache."""
