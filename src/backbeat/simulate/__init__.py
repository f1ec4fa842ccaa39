"""Simulate a Spotify-like service in eventsim's model, as Arrow batches of contract events.

Start at ``simulator.py`` (``Simulator``, ``SimulatorSettings``, ``SimBatch``). The site is an
eventsim config (``config.py``, ``defaults.py``) compiled by ``machine.py``; users
(``users.py``, ``identity.py``) play tracks from a catalog (``catalog.py``, ``synthetic.py``;
a file named by ``--catalog``: ``catalog_file.py``) through the vectorized ``engine.py`` and
``listen.py``, from a steady state (``steady.py``); ``tables.py`` builds Arrow, with ids that
are the run's own (``scope.py``); scheduled spikes and drops are ``incidents.py`` and
``incident_effects.py``; ``pacing.py`` and ``writer.py`` are for the CLI.
"""

from __future__ import annotations

from backbeat.simulate.catalog import Catalog, load_kaggle_tracks
from backbeat.simulate.catalog_file import catalog_format, load_catalog
from backbeat.simulate.config import EventsimConfig, load_config
from backbeat.simulate.defaults import default_config
from backbeat.simulate.incidents import Incident, parse_incident, parse_incidents
from backbeat.simulate.pacing import paced
from backbeat.simulate.simulator import SimBatch, Simulator, SimulatorSettings
from backbeat.simulate.synthetic import load_listen_counts, synthetic_catalog

__all__ = [
    "Catalog",
    "EventsimConfig",
    "Incident",
    "SimBatch",
    "Simulator",
    "SimulatorSettings",
    "catalog_format",
    "default_config",
    "load_catalog",
    "load_config",
    "load_kaggle_tracks",
    "load_listen_counts",
    "paced",
    "parse_incident",
    "parse_incidents",
    "synthetic_catalog",
]
