"""What the execution processes run: the execution controller and workers, and operations.

- :mod:`.node`: process entry (``NODE_TYPE``, ``EX``, config) of controllers and workers;
- :mod:`.execution_controller`: start-up, run and shutdown of an execution, wiring
  :mod:`.dispatch` (worker connections, dispatch, results), :mod:`.slicing` (recovery, the
  slicers), :mod:`.status` (status writes), :mod:`.scheduler` (queue/dispatch/retry rules),
  :mod:`.state_writer` (batched store writes), :mod:`.analytics` (ExecutionAnalytics),
  :mod:`.server` (HTTP + ``/worker`` websocket), :mod:`.protocol` (worker messages),
  :mod:`.slices` (slices and state records);
- :mod:`.worker`: runs the operation pipeline per slice (:mod:`.pipeline`);
- :mod:`.operations`: the operation API, the entry-point registry, validation, built-ins;
- :mod:`.settings`, :mod:`.metrics`, :mod:`.logs`, :mod:`.connectors` (durations are parsed by
  :func:`teraslice_k8s.models.schema.parse_duration`).
"""
