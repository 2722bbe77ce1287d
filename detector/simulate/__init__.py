"""Realistic CloudTrail traffic with labelled attack scenarios.

This package owns the synthetic world the tests, the demo, the evaluation and the benchmarks
run on. Its modules follow the data they make:

* ``plan``: what to simulate (:func:`plan`, :class:`SimulationPlan`) and the ground truth type
  (:class:`Label`);
* ``ids``, ``apis``: identifiers and the API table (service, read-only, request parameters);
* ``world``: two AWS accounts, their buckets, and a roster of principals each with its own
  randomised habits (rates, object sizes, schedules, networks);
* ``records``: the one place that knows CloudTrail record shapes;
* ``populations``: benign behaviour, one principal-day at a time, including benign change;
* ``scenarios``: the attack catalogue (:data:`CATALOGUE`), one module per scenario with the
  detection it exercises and its intensity range;
* ``archive``: the event stream (:func:`iter_events`, :func:`labels`) and the S3-layout writer
  (:func:`write_archive`, the one shell that touches the file system);
* ``bulk``: a fast template stream for throughput benchmarks (:func:`iter_bulk`).

Everything is pure generation under a seed: each principal-day, each attack and each delivery
hour draws from its own ``random.Random`` seeded with a string (SHA-512 based, so independent of
``PYTHONHASHSEED``), never from global random state. The same plan therefore gives byte-identical
events, and :func:`labels` can rebuild the attack events without generating the background.

Events are plain dicts shaped like CloudTrail records (``eventVersion`` 1.08/1.09) with the real
quirks kept on purpose, because the decoder and the detector must cope with them: S3 data events
carry a bracketed ``userAgent``, ``ConsoleLogin`` has no ``requestID``, calls made by AWS
services on a role's behalf carry ``invokedBy``, and IAM calls land in ``us-east-1``.
"""

from detector.simulate.archive import iter_events, write_archive
from detector.simulate.bulk import iter_bulk
from detector.simulate.plan import ACCOUNTS, DEFAULT_START, MIN_PRINCIPALS, VARIANTS, Label, SimulationPlan, plan
from detector.simulate.scenarios import CATALOGUE, SCENARIOS, Intensity, Scenario, labels
from detector.simulate.world import roster

__all__ = [
    "ACCOUNTS",
    "CATALOGUE",
    "DEFAULT_START",
    "MIN_PRINCIPALS",
    "SCENARIOS",
    "VARIANTS",
    "Intensity",
    "Label",
    "Scenario",
    "SimulationPlan",
    "iter_bulk",
    "iter_events",
    "labels",
    "plan",
    "roster",
    "write_archive",
]
