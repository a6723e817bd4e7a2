"""Timestep's core: settings, the database and Timestep's tables, the process's state and its
DBOS runtime, the names runs share through DBOS. It imports nothing of Timestep above it."""
