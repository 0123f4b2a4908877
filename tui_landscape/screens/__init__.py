"""The app's screens: plot view, file browser, comparison, setup and run, help."""
