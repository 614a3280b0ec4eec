"""Building blocks of the transaction simulator; the entry point is :func:`features.simulator.simulate`.

* :mod:`~features.simulation.world`: countries, cities, merchant categories, rhythms;
* :mod:`~features.simulation.population`: customers, cards, devices, trips, merchants;
* :mod:`~features.simulation.legit`: legit traffic;
* :mod:`~features.simulation.fraud`: the fraud scenarios;
* :mod:`~features.simulation.config`: :class:`SimulationConfig` and the scenario ids.
"""

from features.simulation.config import DEFAULT_SCENARIO_RATES, SCENARIOS, SimulationConfig

__all__ = ["DEFAULT_SCENARIO_RATES", "SCENARIOS", "SimulationConfig"]
