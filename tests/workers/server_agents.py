"""Agents for ``timestep serve --agents server_agents`` in the tests (on PYTHONPATH there).

Its model provider is the fake OpenAI server named by ``TIMESTEP_TEST_MODEL_URL``.
"""

from __future__ import annotations

import os

from agents import Agent, OpenAIProvider, set_tracing_disabled

import timestep

set_tracing_disabled(True)
timestep.set_model_provider(
    OpenAIProvider(base_url=os.environ["TIMESTEP_TEST_MODEL_URL"], api_key="test-key")
)

greeter = Agent(name="server-cli-greeter", instructions="Greet.")
