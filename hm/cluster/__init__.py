"""``hm run --cluster``: the steps of a run as tasks on a Dask cluster.

* ``connect`` — choosing (``tcp://``, ``local:N``, ``HM_CLUSTER``) and opening the cluster;
* ``remote`` — the client side: a step's call becomes a task, its messages are served here;
* ``task`` — the worker side: the task that loads the plugin and runs the step;
* ``wire`` — the names and message codes both sides share.

Nothing here is imported by ``hm --help``: dask is optional, and slow to import.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hm.cluster.connect import Cluster, ClusterSpec
    from hm.cluster.remote import ClusterRun
    from hm.pipeline.graph import Plan
    from hm.run.scheduler import StepRunner

__all__ = ["attach", "parse_cluster"]


def parse_cluster(value: str) -> ClusterSpec:
    from hm.cluster.connect import parse_cluster

    return parse_cluster(value)


def attach(
    spec: ClusterSpec,
    run_id: str,
    plan: Plan,
    executors: dict[str, StepRunner],
    *,
    parallelism: int,
    fetch: Iterable[str] = (),
) -> tuple[Cluster, ClusterRun]:
    """Open the cluster and route every step of ``executors`` to it (in place).

    ``fetch``: steps whose workspace must also be brought back here.
    :raises ClusterError: see :func:`hm.cluster.connect.open_cluster`.
    """
    import math

    from hm.cluster.connect import open_cluster
    from hm.cluster.remote import ClusterRun, RemotePlugin
    from hm.run.scheduler import StepRunner

    threads = max(1, math.ceil(parallelism / spec.local_workers)) if spec.local_workers else 1
    cluster = open_cluster(spec, threads_per_worker=threads)
    keep: set[str] = set()
    for stage in plan.stages:
        for chain in stage.chains:
            if chain.parent_step is not None:
                keep.add(chain.parent_step)
            keep.update(step.key for step in chain.steps[:-1])
    try:
        run = ClusterRun(cluster, run_id, keep=keep, fetch=set(fetch))
    except BaseException:
        cluster.close()
        raise
    remote: dict[int, RemotePlugin] = {}
    for key, ex in executors.items():
        plugin = remote.setdefault(id(ex.plugin), RemotePlugin(ex.plugin, run))
        executors[key] = StepRunner(ex.runner, plugin)
    return cluster, run
