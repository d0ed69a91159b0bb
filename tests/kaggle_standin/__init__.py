"""A stand-in Kaggle API server for tests: the real `kaggle` client talks to it over loopback."""

from tests.kaggle_standin.server import Fault, Recorded, StandIn, serve

__all__ = ["Fault", "Recorded", "StandIn", "serve"]
