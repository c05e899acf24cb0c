"""Where the chunks of a run are generated: in this process (the default,
`triplegen.orchestration.run`) or on the workers of a Ray cluster (`--executor ray`,
`triplegen.orchestration.executors.ray_pool`).

Either way the driver reads the input, skips finished chunks and writes every part file and
completion marker itself, so resume, the output and its guarantees do not depend on the executor.
"""
