"""Running a pipeline: scheduler, host services for steps, hooks, workspace archive,
and the event stream that the output formats render.

Flow: :func:`hm.run.engine.run_pipeline` takes a validated pipeline and a plugin
registry, builds the plan, and drives :mod:`hm.run.scheduler`; every state change
becomes a build event on the :class:`~hm.run.events.EventBus`, which feeds the
hooks and the chosen output sink.
"""
