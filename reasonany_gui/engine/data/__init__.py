"""Floor 4: calibration data (built-in sets, user files, chat templates) and the built-in demo trio."""
