"""Launchers: thin absl apps over the jbrain library (`jbrain <command>`)."""
