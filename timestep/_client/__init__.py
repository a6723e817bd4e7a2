"""The client API behind ``timestep``'s public names: start runs and read their results,
answer approvals, manage schedules, limits and stored states, from any process. It reaches
DBOS through ``system()``: DBOS itself where this process launched it, else a client."""
